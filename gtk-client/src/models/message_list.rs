//! The messages of one chat as a `gio::ListModel`, oldest first by sequence
//! number, with messages still being sent at the end. It keeps the derived
//! state that depends on neighbours: day separators and reply quotes.

use gtk::subclass::prelude::*;
use gtk::{gio, glib, prelude::*};

use super::{format, Message, MessageStatus};

mod imp {
    use std::cell::{Cell, RefCell};

    use super::*;

    #[derive(Default, glib::Properties)]
    #[properties(wrapper_type = super::MessageList)]
    pub struct MessageList {
        pub items: RefCell<Vec<Message>>,
        /// Older messages exist on the server ("load earlier").
        #[property(get, set = Self::set_has_more, explicit_notify)]
        pub has_more: Cell<bool>,
        /// A page of history is being fetched.
        #[property(get, set = Self::set_loading, explicit_notify)]
        pub loading: Cell<bool>,
        /// Names are shown above others' messages in groups.
        #[property(get, set, construct_only)]
        pub is_group: Cell<bool>,
        /// How far another member has read / received: own messages up to
        /// it show "read" / "delivered" ticks, also those added later.
        pub others_read: Cell<i64>,
        pub others_delivered: Cell<i64>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for MessageList {
        const NAME: &'static str = "FerrogramMessageList";
        type Type = super::MessageList;
        type Interfaces = (gio::ListModel,);
    }

    #[glib::derived_properties]
    impl ObjectImpl for MessageList {}

    impl ListModelImpl for MessageList {
        fn item_type(&self) -> glib::Type {
            Message::static_type()
        }

        fn n_items(&self) -> u32 {
            self.items.borrow().len() as u32
        }

        fn item(&self, position: u32) -> Option<glib::Object> {
            self.items
                .borrow()
                .get(position as usize)
                .map(|m| m.clone().upcast())
        }
    }

    impl MessageList {
        crate::models::setters! {
            set_has_more => has_more: Cell<bool>;
            set_loading => loading: Cell<bool>;
        }
    }
}

glib::wrapper! {
    pub struct MessageList(ObjectSubclass<imp::MessageList>)
        @implements gio::ListModel;
}

impl MessageList {
    pub fn new(is_group: bool) -> Self {
        glib::Object::builder()
            .property("is-group", is_group)
            .build()
    }

    fn items(&self) -> std::cell::Ref<'_, Vec<Message>> {
        self.imp().items.borrow()
    }

    pub fn len(&self) -> usize {
        self.items().len()
    }

    pub fn is_empty(&self) -> bool {
        self.items().is_empty()
    }

    pub fn get(&self, position: usize) -> Option<Message> {
        self.items().get(position).cloned()
    }

    pub fn last(&self) -> Option<Message> {
        self.items().last().cloned()
    }

    pub fn by_seq(&self, seq: i64) -> Option<Message> {
        if seq <= 0 {
            return None;
        }
        let items = self.items();
        let stored = items.partition_point(|m| m.seq() > 0);
        items[..stored]
            .binary_search_by_key(&seq, Message::seq)
            .ok()
            .map(|i| items[i].clone())
    }

    /// The lowest sequence number loaded (for "load earlier"), 0 when none.
    pub fn oldest_seq(&self) -> i64 {
        self.items()
            .iter()
            .map(Message::seq)
            .find(|s| *s > 0)
            .unwrap_or(0)
    }

    /// The highest sequence number loaded, 0 when none.
    pub fn newest_seq(&self) -> i64 {
        self.items()
            .iter()
            .rev()
            .map(Message::seq)
            .find(|s| *s > 0)
            .unwrap_or(0)
    }

    /// Inserts a stored message at its place. A message with a seq already
    /// present is not added twice; an own message still pending with the same
    /// client id is acknowledged instead. Answers the message now in the list.
    pub fn insert(&self, message: &Message) -> Message {
        if let Some(existing) = self.by_seq(message.seq()) {
            return existing;
        }
        if message.is_own() && message.seq() > 0 {
            if let Some(pending) = self.pending(&message.client_msg_id()) {
                self.acknowledge(&message.client_msg_id(), message.seq(), message.sent_at());
                return pending;
            }
        }
        let position = {
            let items = self.items();
            if message.seq() == 0 {
                items.len()
            } else {
                let stored = items.partition_point(|m| m.seq() > 0);
                items[..stored].partition_point(|m| m.seq() < message.seq())
            }
        };
        self.imp()
            .items
            .borrow_mut()
            .insert(position, message.clone());
        self.prepare(message);
        self.items_changed(position as u32, 0, 1);
        self.refresh_separators(position);
        self.refresh_separators(position + 1);
        message.clone()
    }

    /// Inserts a page of older (or newer) messages.
    pub fn insert_many(&self, messages: &[Message]) {
        for m in messages {
            self.insert(m);
        }
    }

    /// The server stored a pending message: give it its seq and move it to its
    /// place among the stored ones.
    pub fn acknowledge(&self, client_msg_id: &str, seq: i64, at: i64) -> bool {
        let Some(from) = self
            .items()
            .iter()
            .position(|m| m.seq() == 0 && m.client_msg_id() == client_msg_id)
        else {
            return false;
        };
        let message = self.imp().items.borrow_mut().remove(from);
        self.items_changed(from as u32, 1, 0);
        message.set_seq(seq);
        if at > 0 {
            message.set_sent_at(at);
        }
        if message.status() < MessageStatus::Sent || message.status() == MessageStatus::Failed {
            message.set_status(MessageStatus::Sent);
        }
        self.refresh_separators(from);
        self.insert(&message);
        true
    }

    /// A pending own message by its client id.
    pub fn pending(&self, client_msg_id: &str) -> Option<Message> {
        self.items()
            .iter()
            .find(|m| m.seq() == 0 && m.client_msg_id() == client_msg_id)
            .cloned()
    }

    /// Replaces the text of the message at `seq` (an edit).
    pub fn apply_edit(&self, seq: i64, text: &str) -> bool {
        let Some(message) = self.by_seq(seq) else {
            return false;
        };
        message.set_text(text);
        message.set_edited(true);
        self.refresh_quotes_of(seq);
        true
    }

    /// Marks the message at `seq` deleted for everyone: its text is dropped.
    pub fn apply_delete(&self, seq: i64) -> bool {
        let Some(message) = self.by_seq(seq) else {
            return false;
        };
        message.set_text("");
        message.set_deleted(true);
        self.refresh_quotes_of(seq);
        true
    }

    /// Own messages up to `seq` were read by another member (reading
    /// implies delivery).
    pub fn mark_read_by_others(&self, seq: i64) {
        let imp = self.imp();
        imp.others_read.set(imp.others_read.get().max(seq));
        self.mark_delivered_by_others(seq);
    }

    /// Own messages up to `seq` were received by a device of another member.
    pub fn mark_delivered_by_others(&self, seq: i64) {
        let imp = self.imp();
        imp.others_delivered
            .set(imp.others_delivered.get().max(seq));
        for m in self.items().iter() {
            self.apply_receipts(m);
        }
    }

    /// Raises an own stored message's ticks to what the receipts say
    /// (never lowers them; sending and failed messages are left alone).
    fn apply_receipts(&self, message: &Message) {
        if !message.is_own() || message.seq() <= 0 || message.status() < MessageStatus::Sent {
            return;
        }
        let imp = self.imp();
        let status = if message.seq() <= imp.others_read.get() {
            MessageStatus::Read
        } else if message.seq() <= imp.others_delivered.get() {
            MessageStatus::Delivered
        } else {
            return;
        };
        if message.status() < status || message.status() == MessageStatus::Failed {
            message.set_status(status);
        }
    }

    fn prepare(&self, message: &Message) {
        message.set_show_sender(self.is_group() && !message.is_own());
        self.apply_receipts(message);
        if message.reply_to() > 0 {
            self.fill_quote(message);
        }
    }

    fn fill_quote(&self, message: &Message) {
        if let Some(quoted) = self.by_seq(message.reply_to()) {
            message.set_reply_sender(quoted.sender_name());
            message.set_reply_preview(quoted.preview());
        } else {
            message.set_reply_sender(String::new());
            message.set_reply_preview(crate::i18n::tr("an earlier message"));
        }
    }

    fn refresh_quotes_of(&self, seq: i64) {
        let quoting: Vec<Message> = self
            .items()
            .iter()
            .filter(|m| m.reply_to() == seq)
            .cloned()
            .collect();
        for m in quoting {
            self.fill_quote(&m);
        }
    }

    /// A message shows a day separator when it is the first of its local day.
    fn refresh_separators(&self, position: usize) {
        let (message, previous) = {
            let items = self.items();
            let Some(message) = items.get(position).cloned() else {
                return;
            };
            let previous = position.checked_sub(1).and_then(|p| items.get(p)).cloned();
            (message, previous)
        };
        let at = message.sent_at();
        let new_day =
            previous.is_none_or(|p| format::local_day(p.sent_at()) != format::local_day(at));
        let label = if new_day {
            format::day_label(at, glib::real_time() / 1000)
        } else {
            String::new()
        };
        message.set_day_separator(label);
    }
}

impl Default for MessageList {
    fn default() -> Self {
        Self::new(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::User;

    const DAY: i64 = 86_400_000;

    fn msg(seq: i64, at: i64) -> Message {
        let ada = User::new(2, "ada", "Ada");
        Message::new(
            1,
            seq,
            &format!("c{seq}"),
            Some(&ada),
            false,
            &format!("m{seq}"),
            at,
        )
    }

    fn seqs(list: &MessageList) -> Vec<i64> {
        (0..list.n_items())
            .map(|i| list.item(i).and_downcast::<Message>().unwrap().seq())
            .collect()
    }

    #[test]
    fn ordered_by_seq_without_duplicates() {
        let list = MessageList::new(false);
        let now = glib::real_time() / 1000;
        for s in [5, 2, 9, 2, 7] {
            list.insert(&msg(s, now));
        }
        assert_eq!(seqs(&list), vec![2, 5, 7, 9]);
        assert_eq!((list.oldest_seq(), list.newest_seq()), (2, 9));
        assert_eq!(list.by_seq(7).unwrap().text(), "m7");
        assert!(list.by_seq(3).is_none());
    }

    #[test]
    fn pending_messages_stay_last_until_acknowledged() {
        let list = MessageList::new(false);
        let me = User::new(1, "me", "Me");
        let now = glib::real_time() / 1000;
        list.insert(&msg(1, now));
        let pending = Message::outgoing(1, "p1", &me, "hello", now);
        list.insert(&pending);
        list.insert(&msg(2, now));
        assert_eq!(seqs(&list), vec![1, 2, 0]);
        assert_eq!(pending.status(), MessageStatus::Sending);
        assert!(list.acknowledge("p1", 3, now));
        assert_eq!(seqs(&list), vec![1, 2, 3]);
        assert_eq!(pending.status(), MessageStatus::Sent);
        // The echo of the same message over the event stream is not a second one.
        let echo = Message::new(1, 3, "p1", Some(&me), true, "hello", now);
        assert_eq!(list.insert(&echo), pending);
        assert_eq!(list.len(), 3);
        list.mark_read_by_others(3);
        assert_eq!(pending.status(), MessageStatus::Read);
    }

    #[test]
    fn ticks_follow_delivery_and_read_receipts_also_for_later_messages() {
        let list = MessageList::new(false);
        let me = User::new(1, "me", "Me");
        let now = glib::real_time() / 1000;
        let own = |seq: i64| Message::new(1, seq, &format!("c{seq}"), Some(&me), true, "hi", now);
        let (m1, m2, m3) = (own(1), own(2), own(3));
        for m in [&m1, &m2, &m3] {
            list.insert(m);
        }
        let theirs = msg(4, now);
        list.insert(&theirs);
        let status = || [m1.status(), m2.status(), m3.status()];
        assert_eq!(status(), [MessageStatus::Sent; 3]);
        list.mark_delivered_by_others(2);
        assert_eq!(
            status(),
            [
                MessageStatus::Delivered,
                MessageStatus::Delivered,
                MessageStatus::Sent
            ]
        );
        list.mark_read_by_others(1);
        assert_eq!(
            status(),
            [
                MessageStatus::Read,
                MessageStatus::Delivered,
                MessageStatus::Sent
            ]
        );
        // A late, smaller delivery receipt never lowers a tick.
        list.mark_delivered_by_others(1);
        assert_eq!(m1.status(), MessageStatus::Read);
        // Others' messages have no ticks to change.
        assert_eq!(
            theirs.status(),
            Message::new(1, 4, "x", None, false, "", now).status()
        );
        // A message added later (loaded from the store) gets the known ticks.
        let list2 = MessageList::new(false);
        list2.mark_read_by_others(1);
        list2.mark_delivered_by_others(5);
        list2.insert(&own(1));
        list2.insert(&own(5));
        list2.insert(&own(6));
        let got: Vec<MessageStatus> = (0..3).map(|i| list2.get(i).unwrap().status()).collect();
        assert_eq!(
            got,
            [
                MessageStatus::Read,
                MessageStatus::Delivered,
                MessageStatus::Sent
            ]
        );
        // A pending message is still "sending" until the server acknowledges it.
        let pending = Message::outgoing(1, "p", &me, "hey", now);
        list2.insert(&pending);
        assert_eq!(pending.status(), MessageStatus::Sending);
        assert!(list2.acknowledge("p", 7, now));
        assert_eq!(pending.status(), MessageStatus::Sent);
        list2.mark_delivered_by_others(7);
        assert_eq!(pending.status(), MessageStatus::Delivered);
    }

    #[test]
    fn day_separators_and_quotes() {
        let list = MessageList::new(true);
        let now = glib::real_time() / 1000;
        let first = msg(1, now - 3 * DAY);
        let second = msg(2, now - 3 * DAY + 1000);
        let third = msg(3, now);
        list.insert(&third);
        list.insert(&first);
        list.insert(&second);
        assert!(!first.day_separator().is_empty());
        assert!(second.day_separator().is_empty());
        assert_eq!(third.day_separator(), "Today");
        assert!(third.show_sender());

        let reply = msg(4, now);
        reply.set_reply_to(2);
        list.insert(&reply);
        assert_eq!(reply.reply_sender(), "Ada");
        assert_eq!(reply.reply_preview(), "m2");
        list.apply_edit(2, "**changed**");
        assert!(second.edited());
        assert_eq!(reply.reply_preview(), "changed");
        list.apply_delete(2);
        assert!(second.deleted());
        assert_eq!(second.text(), "");
        assert_eq!(reply.reply_preview(), "Message deleted");
    }
}

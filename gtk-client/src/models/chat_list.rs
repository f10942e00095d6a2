//! All chats as a `gio::ListModel`, most recent activity first, with the total
//! of unread messages. A chat moves to its new place by itself when its
//! activity changes.

use gtk::subclass::prelude::*;
use gtk::{gio, glib, prelude::*};

use super::Chat;

mod imp {
    use std::cell::{Cell, RefCell};

    use super::*;

    #[derive(Default, glib::Properties)]
    #[properties(wrapper_type = super::ChatList)]
    pub struct ChatList {
        pub items: RefCell<Vec<Chat>>,
        #[property(get)]
        pub unread_total: Cell<u32>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ChatList {
        const NAME: &'static str = "FerrogramChatList";
        type Type = super::ChatList;
        type Interfaces = (gio::ListModel,);
    }

    #[glib::derived_properties]
    impl ObjectImpl for ChatList {}

    impl ListModelImpl for ChatList {
        fn item_type(&self) -> glib::Type {
            Chat::static_type()
        }

        fn n_items(&self) -> u32 {
            self.items.borrow().len() as u32
        }

        fn item(&self, position: u32) -> Option<glib::Object> {
            self.items
                .borrow()
                .get(position as usize)
                .map(|c| c.clone().upcast())
        }
    }
}

glib::wrapper! {
    pub struct ChatList(ObjectSubclass<imp::ChatList>)
        @implements gio::ListModel;
}

/// Sort key: newest activity first; among equals, the newer chat first.
fn goes_before(a: &Chat, b: &Chat) -> bool {
    (a.last_activity(), a.chat_id()) > (b.last_activity(), b.chat_id())
}

impl ChatList {
    pub fn new() -> Self {
        glib::Object::new()
    }

    pub fn by_id(&self, chat_id: i64) -> Option<Chat> {
        self.imp()
            .items
            .borrow()
            .iter()
            .find(|c| c.chat_id() == chat_id)
            .cloned()
    }

    pub fn chats(&self) -> Vec<Chat> {
        self.imp().items.borrow().clone()
    }

    /// Adds a chat at its place (a chat already present is kept). Answers the
    /// chat in the list.
    pub fn add(&self, chat: &Chat) -> Chat {
        if let Some(existing) = self.by_id(chat.chat_id()) {
            return existing;
        }
        let position = self.place_of(chat);
        self.imp().items.borrow_mut().insert(position, chat.clone());
        self.items_changed(position as u32, 0, 1);
        chat.connect_last_activity_notify(glib::clone!(
            #[weak(rename_to = list)]
            self,
            move |chat| list.reposition(chat)
        ));
        chat.connect_unread_count_notify(glib::clone!(
            #[weak(rename_to = list)]
            self,
            move |_| list.recount_unread()
        ));
        self.recount_unread();
        chat.clone()
    }

    /// Removes a chat (left it, or was removed).
    pub fn remove(&self, chat_id: i64) -> Option<Chat> {
        let position = self
            .imp()
            .items
            .borrow()
            .iter()
            .position(|c| c.chat_id() == chat_id)?;
        let chat = self.imp().items.borrow_mut().remove(position);
        self.items_changed(position as u32, 1, 0);
        self.recount_unread();
        Some(chat)
    }

    /// Empties the list (log out).
    pub fn clear(&self) {
        let n = self.imp().items.take().len();
        if n > 0 {
            self.items_changed(0, n as u32, 0);
        }
        self.recount_unread();
    }

    fn place_of(&self, chat: &Chat) -> usize {
        self.imp()
            .items
            .borrow()
            .iter()
            .position(|c| c != chat && goes_before(chat, c))
            .unwrap_or_else(|| self.imp().items.borrow().len())
    }

    fn reposition(&self, chat: &Chat) {
        let Some(from) = self.imp().items.borrow().iter().position(|c| c == chat) else {
            return;
        };
        let item = self.imp().items.borrow_mut().remove(from);
        let to = self.place_of(&item);
        self.imp().items.borrow_mut().insert(to, item);
        if from != to {
            let (first, count) = (from.min(to), from.abs_diff(to) + 1);
            self.items_changed(first as u32, count as u32, count as u32);
        }
    }

    fn recount_unread(&self) {
        let total = self
            .imp()
            .items
            .borrow()
            .iter()
            .map(Chat::unread_count)
            .sum();
        if self.imp().unread_total.replace(total) != total {
            self.notify_unread_total();
        }
    }
}

impl Default for ChatList {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::models::{Message, User};

    fn ids(list: &ChatList) -> Vec<i64> {
        (0..list.n_items())
            .map(|i| list.item(i).and_downcast::<Chat>().unwrap().chat_id())
            .collect()
    }

    fn chat_at(id: i64, activity: i64) -> Chat {
        let chat = Chat::new_group(id, &format!("chat {id}"), 2);
        chat.set_last_activity(activity);
        chat
    }

    #[test]
    fn ordered_by_last_activity() {
        let list = ChatList::new();
        list.add(&chat_at(1, 100));
        list.add(&chat_at(2, 300));
        list.add(&chat_at(3, 200));
        list.add(&chat_at(4, 0));
        assert_eq!(ids(&list), vec![2, 3, 1, 4]);
        // Equal activity: the newer chat first.
        list.add(&chat_at(5, 200));
        assert_eq!(ids(&list), vec![2, 5, 3, 1, 4]);
        // Adding a known chat keeps the one in the list.
        list.add(&chat_at(1, 999));
        assert_eq!(ids(&list), vec![2, 5, 3, 1, 4]);
    }

    #[test]
    fn a_new_message_moves_its_chat_to_the_top_and_signals_it() {
        let list = ChatList::new();
        for (id, at) in [(1, 100), (2, 200), (3, 300)] {
            list.add(&chat_at(id, at));
        }
        let changes = Rc::new(RefCell::new(Vec::new()));
        list.connect_items_changed({
            let changes = changes.clone();
            move |_, pos, removed, added| changes.borrow_mut().push((pos, removed, added))
        });
        let ada = User::new(9, "ada", "Ada");
        let oldest = list.by_id(1).unwrap();
        oldest.add_message(&Message::new(1, 1, "x", Some(&ada), false, "hi", 400), true);
        assert_eq!(ids(&list), vec![1, 3, 2]);
        assert_eq!(*changes.borrow(), vec![(0, 3, 3)]);
        // A message that does not change the order signals nothing.
        oldest.add_message(
            &Message::new(1, 2, "y", Some(&ada), false, "again", 500),
            true,
        );
        assert_eq!(ids(&list), vec![1, 3, 2]);
        assert_eq!(changes.borrow().len(), 1);
        list.remove(3);
        assert_eq!(ids(&list), vec![1, 2]);
    }

    #[test]
    fn unread_total_follows_the_chats() {
        let list = ChatList::new();
        let ada = User::new(9, "ada", "Ada");
        let a = list.add(&Chat::new_direct(1, &ada));
        let b = list.add(&chat_at(2, 10));
        assert_eq!(list.unread_total(), 0);
        a.add_message(&Message::new(1, 1, "1", Some(&ada), false, "one", 20), true);
        a.add_message(&Message::new(1, 2, "2", Some(&ada), false, "two", 30), true);
        b.add_message(
            &Message::new(2, 1, "3", Some(&ada), false, "three", 40),
            true,
        );
        assert_eq!((a.unread_count(), b.unread_count()), (2, 1));
        assert_eq!(list.unread_total(), 3);
        a.mark_all_read();
        assert_eq!(list.unread_total(), 1);
        list.remove(2);
        assert_eq!(list.unread_total(), 0);
    }
}

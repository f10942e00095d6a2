//! One chat (direct or group) as the chat list and the chat view see it:
//! title, the peer of a direct chat, last activity and preview, unread count,
//! who is typing, and its messages.

use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

use super::{Message, MessageList, User};
use crate::i18n::{tr, tr_args};

mod imp {
    use std::cell::{Cell, OnceCell, RefCell};

    use super::*;

    // `chat_id` is the property `chat-id`, named as in the protocol.
    #[allow(clippy::struct_field_names)]
    #[derive(Default, glib::Properties)]
    #[properties(wrapper_type = super::Chat)]
    pub struct Chat {
        #[property(get, construct_only)]
        pub chat_id: Cell<i64>,
        #[property(get, construct_only)]
        pub is_group: Cell<bool>,
        /// The group's title, or the peer's name in a direct chat.
        #[property(get, set = Self::set_title, explicit_notify)]
        pub title: RefCell<String>,
        /// The other member of a direct chat.
        #[property(get, set, nullable)]
        pub peer: RefCell<Option<User>>,
        #[property(get, set = Self::set_member_count, explicit_notify)]
        pub member_count: Cell<u32>,
        /// Time of the newest message (ms since the epoch); orders the chat list.
        #[property(get, set = Self::set_last_activity, explicit_notify)]
        pub last_activity: Cell<i64>,
        /// One line about the newest message ("You: see you", "Ada: hi").
        #[property(get, set = Self::set_preview, explicit_notify)]
        pub preview: RefCell<String>,
        #[property(get, set = Self::set_unread_count, explicit_notify)]
        pub unread_count: Cell<u32>,
        /// My read position.
        #[property(get, set = Self::set_read_seq, explicit_notify)]
        pub read_seq: Cell<i64>,
        /// "typing…" or "Ada is typing…", empty when nobody types.
        #[property(get, set = Self::set_typing, explicit_notify)]
        pub typing: RefCell<String>,
        #[property(get)]
        pub messages: OnceCell<MessageList>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Chat {
        const NAME: &'static str = "FerrogramChat";
        type Type = super::Chat;
    }

    #[glib::derived_properties]
    impl ObjectImpl for Chat {
        fn constructed(&self) {
            self.parent_constructed();
            let _ = self.messages.set(MessageList::new(self.is_group.get()));
        }
    }

    impl Chat {
        crate::models::setters! {
            set_title => title: RefCell<String>;
            set_member_count => member_count: Cell<u32>;
            set_last_activity => last_activity: Cell<i64>;
            set_preview => preview: RefCell<String>;
            set_unread_count => unread_count: Cell<u32>;
            set_read_seq => read_seq: Cell<i64>;
            set_typing => typing: RefCell<String>;
        }
    }
}

glib::wrapper! {
    pub struct Chat(ObjectSubclass<imp::Chat>);
}

impl Chat {
    pub fn new_direct(chat_id: i64, peer: &User) -> Self {
        let chat: Self = glib::Object::builder()
            .property("chat-id", chat_id)
            .property("is-group", false)
            .property("peer", peer)
            .property("title", peer.name())
            .property("member-count", 2u32)
            .build();
        // The title follows the peer's name.
        peer.bind_property("display-name", &chat, "title")
            .transform_to(|b, _: String| b.source().and_downcast::<User>().map(|u| u.name()))
            .build();
        chat
    }

    pub fn new_group(chat_id: i64, title: &str, member_count: u32) -> Self {
        glib::Object::builder()
            .property("chat-id", chat_id)
            .property("is-group", true)
            .property("title", title)
            .property("member-count", member_count)
            .build()
    }

    /// Adds a message, updating preview, activity and (for others' messages
    /// not yet read, when `counts_as_unread`) the unread count. Answers the
    /// message now in the list (an already known one is not added again).
    pub fn add_message(&self, message: &Message, counts_as_unread: bool) -> Message {
        let list = self.messages();
        let known = message.seq() > 0 && list.by_seq(message.seq()).is_some();
        let in_list = list.insert(message);
        if known {
            return in_list;
        }
        if list.last().as_ref() == Some(&in_list) {
            self.refresh_preview();
        }
        if counts_as_unread && !message.is_own() && message.seq() > self.read_seq() {
            self.set_unread_count(self.unread_count() + 1);
        }
        if message.is_own() && message.seq() > self.read_seq() {
            // Writing into a chat means having read it.
            self.set_read_seq(message.seq());
        }
        in_list
    }

    /// Recomputes the preview and activity from the newest message.
    pub fn refresh_preview(&self) {
        let Some(last) = self.messages().last() else {
            return;
        };
        let text = last.preview();
        let preview = if last.is_own() {
            tr_args("You: {text}", &[("text", &text)])
        } else if self.is_group() {
            tr_args(
                "{name}: {text}",
                &[("name", &last.sender_name()), ("text", &text)],
            )
        } else {
            text
        };
        self.set_preview(preview);
        if last.sent_at() > self.last_activity() {
            self.set_last_activity(last.sent_at());
        }
    }

    /// Everything up to the newest message is read. Answers the new read
    /// position when it moved (to tell the server), else `None`.
    pub fn mark_all_read(&self) -> Option<i64> {
        self.set_unread_count(0);
        let newest = self.messages().newest_seq();
        (newest > self.read_seq()).then(|| {
            self.set_read_seq(newest);
            newest
        })
    }

    /// Shows who is typing (`None`: nobody).
    pub fn show_typing(&self, who: Option<&str>) {
        let text = match who {
            None => String::new(),
            Some(name) if self.is_group() => tr_args("{name} is typing…", &[("name", name)]),
            Some(_) => tr("typing…"),
        };
        self.set_typing(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_update_preview_activity_and_unread() {
        let ada = User::new(2, "ada", "Ada");
        let me = User::new(1, "me", "Me");
        let chat = Chat::new_direct(7, &ada);
        assert_eq!(chat.title(), "Ada");
        ada.set_display_name("Ada L.");
        assert_eq!(chat.title(), "Ada L.");

        chat.add_message(
            &Message::new(7, 1, "a", Some(&ada), false, "**hi**", 1000),
            true,
        );
        chat.add_message(
            &Message::new(7, 2, "b", Some(&ada), false, "there", 2000),
            true,
        );
        assert_eq!(chat.unread_count(), 2);
        assert_eq!(chat.preview(), "there");
        assert_eq!(chat.last_activity(), 2000);
        // The same message again (resume, history) counts once.
        chat.add_message(
            &Message::new(7, 2, "b", Some(&ada), false, "there", 2000),
            true,
        );
        assert_eq!(chat.unread_count(), 2);
        // A message read elsewhere (history) does not count.
        chat.add_message(
            &Message::new(7, 3, "c", Some(&ada), false, "old", 3000),
            false,
        );
        assert_eq!(chat.unread_count(), 2);

        assert_eq!(chat.mark_all_read(), Some(3));
        assert_eq!(chat.unread_count(), 0);
        assert_eq!(chat.mark_all_read(), None);

        chat.add_message(
            &Message::new(7, 4, "d", Some(&me), true, "mine", 4000),
            true,
        );
        assert_eq!(chat.unread_count(), 0);
        assert_eq!(chat.preview(), "You: mine");
        assert_eq!(chat.read_seq(), 4);
    }

    #[test]
    fn group_previews_and_typing() {
        let bob = User::new(3, "bob", "Bob");
        let chat = Chat::new_group(8, "Team", 3);
        chat.add_message(&Message::new(8, 1, "a", Some(&bob), false, "yo", 10), true);
        assert_eq!(chat.preview(), "Bob: yo");
        chat.show_typing(Some("Bob"));
        assert_eq!(chat.typing(), "Bob is typing…");
        chat.show_typing(None);
        assert_eq!(chat.typing(), "");
        let direct = Chat::new_direct(9, &bob);
        direct.show_typing(Some("Bob"));
        assert_eq!(direct.typing(), "typing…");
    }
}

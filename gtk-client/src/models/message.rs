//! One message in a chat: its Markdown source and the markup rendered from it,
//! delivery state, edits and deletes, the reply it quotes, and whether its
//! signature checked out.

use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

use super::markdown;
use super::User;

/// Delivery state of a message, shown as ticks on own messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, glib::Enum)]
#[enum_type(name = "FerrogramMessageStatus")]
pub enum MessageStatus {
    /// Not yet acknowledged by the server.
    #[default]
    Sending,
    /// Stored by the server (one tick).
    Sent,
    /// Received by a member's device (two ticks).
    Delivered,
    /// Read by another member (two coloured ticks).
    Read,
    /// Could not be sent; can be retried.
    Failed,
}

/// What the receiver could establish about who wrote a message.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[enum_type(name = "FerrogramTrust")]
pub enum Trust {
    /// Signature valid and made with the sender's pinned key.
    #[default]
    Valid,
    /// Signature valid, but with a key other than the one pinned.
    KeyChanged,
    /// Signature or decryption failed: the text is not shown as if it were real.
    Invalid,
}

mod imp {
    use std::cell::{Cell, RefCell};

    use super::*;

    #[derive(Default, glib::Properties)]
    #[properties(wrapper_type = super::Message)]
    pub struct Message {
        #[property(get, construct_only)]
        pub chat_id: Cell<i64>,
        /// The chat's sequence number; 0 until the server acknowledged it.
        #[property(get, set = Self::set_seq, explicit_notify)]
        pub seq: Cell<i64>,
        #[property(get, construct_only)]
        pub client_msg_id: RefCell<String>,
        #[property(get, set, nullable)]
        pub sender: RefCell<Option<User>>,
        #[property(get, construct_only)]
        pub is_own: Cell<bool>,
        /// Markdown source, as sent.
        #[property(get, set = Self::set_text, explicit_notify)]
        pub text: RefCell<String>,
        /// Pango markup rendered from `text`.
        #[property(get)]
        pub markup: RefCell<String>,
        #[property(get)]
        pub emoji_only: Cell<bool>,
        #[property(get, set = Self::set_sent_at, explicit_notify)]
        pub sent_at: Cell<i64>,
        #[property(get, set = Self::set_status, explicit_notify, builder(MessageStatus::default()))]
        pub status: Cell<MessageStatus>,
        #[property(get, set = Self::set_edited, explicit_notify)]
        pub edited: Cell<bool>,
        #[property(get, set = Self::set_deleted, explicit_notify)]
        pub deleted: Cell<bool>,
        #[property(get, set = Self::set_trust, explicit_notify, builder(Trust::default()))]
        pub trust: Cell<Trust>,
        /// Seq of the quoted message, 0 for none.
        #[property(get, set = Self::set_reply_to, explicit_notify)]
        pub reply_to: Cell<i64>,
        #[property(get, set = Self::set_reply_sender, explicit_notify)]
        pub reply_sender: RefCell<String>,
        #[property(get, set = Self::set_reply_preview, explicit_notify)]
        pub reply_preview: RefCell<String>,
        /// Show the sender's name above the bubble (groups, others' messages).
        #[property(get, set = Self::set_show_sender, explicit_notify)]
        pub show_sender: Cell<bool>,
        /// The day separator shown above this message, empty for none.
        #[property(get, set = Self::set_day_separator, explicit_notify)]
        pub day_separator: RefCell<String>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Message {
        const NAME: &'static str = "FerrogramMessage";
        type Type = super::Message;
    }

    #[glib::derived_properties]
    impl ObjectImpl for Message {}

    impl Message {
        crate::models::setters! {
            set_seq => seq: Cell<i64>;
            set_sent_at => sent_at: Cell<i64>;
            set_status => status: Cell<MessageStatus>;
            set_edited => edited: Cell<bool>;
            set_deleted => deleted: Cell<bool>;
            set_trust => trust: Cell<Trust>;
            set_reply_to => reply_to: Cell<i64>;
            set_reply_sender => reply_sender: RefCell<String>;
            set_reply_preview => reply_preview: RefCell<String>;
            set_show_sender => show_sender: Cell<bool>;
            set_day_separator => day_separator: RefCell<String>;
        }

        fn set_text(&self, text: String) {
            if *self.text.borrow() == text {
                return;
            }
            let markup = markdown::to_pango_markup(&text);
            let emoji_only = markdown::is_emoji_only(&text);
            self.text.replace(text);
            self.markup.replace(markup);
            let obj = self.obj();
            obj.notify_text();
            obj.notify_markup();
            if self.emoji_only.replace(emoji_only) != emoji_only {
                obj.notify_emoji_only();
            }
        }
    }
}

glib::wrapper! {
    pub struct Message(ObjectSubclass<imp::Message>);
}

impl Message {
    /// A message as received or loaded from history.
    pub fn new(
        chat_id: i64,
        seq: i64,
        client_msg_id: &str,
        sender: Option<&User>,
        is_own: bool,
        text: &str,
        sent_at: i64,
    ) -> Self {
        glib::Object::builder()
            .property("chat-id", chat_id)
            .property("seq", seq)
            .property("client-msg-id", client_msg_id)
            .property("sender", sender)
            .property("is-own", is_own)
            .property("text", text)
            .property("sent-at", sent_at)
            .property(
                "status",
                if seq > 0 {
                    MessageStatus::Sent
                } else {
                    MessageStatus::Sending
                },
            )
            .build()
    }

    /// A message this client is sending (no seq yet).
    pub fn outgoing(chat_id: i64, client_msg_id: &str, me: &User, text: &str, now: i64) -> Self {
        Self::new(chat_id, 0, client_msg_id, Some(me), true, text, now)
    }

    /// The sender's name to show ("" when unknown).
    pub fn sender_name(&self) -> String {
        self.sender().map(|u| u.name()).unwrap_or_default()
    }

    /// The one-line text for previews and reply quotes.
    pub fn preview(&self) -> String {
        if self.deleted() {
            crate::i18n::tr("Message deleted")
        } else if self.trust() == Trust::Invalid {
            crate::i18n::tr("Message could not be verified")
        } else {
            markdown::plain_preview(&self.text(), 120)
        }
    }

    /// Whether it may be edited or deleted from this client.
    pub fn can_modify(&self) -> bool {
        self.is_own() && self.seq() > 0 && !self.deleted()
    }
}

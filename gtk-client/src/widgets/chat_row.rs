//! One row of the chat list: avatar, name, time of the last message, the
//! preview (or who is typing) and the unread badge.

use gtk::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};

use crate::models::{format, Chat};

mod imp {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "chat_row.ui")]
    #[properties(wrapper_type = super::ChatRow)]
    pub struct ChatRow {
        #[template_child]
        pub avatar: TemplateChild<adw::Avatar>,
        #[template_child]
        pub time_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub preview_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub unread_label: TemplateChild<gtk::Label>,
        #[property(get, set = Self::set_chat, explicit_notify, nullable)]
        pub chat: RefCell<Option<Chat>>,
        pub handlers: RefCell<Vec<glib::SignalHandlerId>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ChatRow {
        const NAME: &'static str = "FerrogramChatRow";
        type Type = super::ChatRow;
        type ParentType = gtk::Box;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for ChatRow {
        fn dispose(&self) {
            self.set_chat(None);
        }
    }
    impl WidgetImpl for ChatRow {}
    impl BoxImpl for ChatRow {}

    impl ChatRow {
        fn set_chat(&self, chat: Option<Chat>) {
            if *self.chat.borrow() == chat {
                return;
            }
            if let Some(old) = self.chat.take() {
                for id in self.handlers.take() {
                    old.disconnect(id);
                }
            }
            let obj = self.obj();
            if let Some(chat) = &chat {
                let mut handlers = self.handlers.borrow_mut();
                for name in ["preview", "typing", "unread-count", "last-activity"] {
                    handlers.push(chat.connect_notify_local(
                        Some(name),
                        glib::clone!(
                            #[weak]
                            obj,
                            move |_, _| obj.update()
                        ),
                    ));
                }
            }
            self.chat.replace(chat);
            obj.update();
            obj.notify_chat();
        }
    }
}

glib::wrapper! {
    pub struct ChatRow(ObjectSubclass<imp::ChatRow>)
        @extends gtk::Box, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

impl ChatRow {
    pub fn new() -> Self {
        glib::Object::new()
    }

    fn update(&self) {
        let imp = self.imp();
        let Some(chat) = self.chat() else {
            return;
        };
        let typing = chat.typing();
        if typing.is_empty() {
            imp.preview_label.set_text(&chat.preview());
            imp.preview_label.remove_css_class("accent");
            imp.preview_label.add_css_class("dim-label");
        } else {
            imp.preview_label.set_text(&typing);
            imp.preview_label.remove_css_class("dim-label");
            imp.preview_label.add_css_class("accent");
        }
        let now = glib::real_time() / 1000;
        imp.time_label
            .set_text(&format::list_time(chat.last_activity(), now));
        let unread = chat.unread_count();
        imp.unread_label.set_visible(unread > 0);
        imp.unread_label.set_text(&if unread > 999 {
            "999+".to_owned()
        } else {
            unread.to_string()
        });
    }
}

impl Default for ChatRow {
    fn default() -> Self {
        Self::new()
    }
}

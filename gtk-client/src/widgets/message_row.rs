//! One message: day separator, bubble (own on the right in the accent
//! colour, others on the left), sender in groups, the quoted reply, the
//! rendered Markdown, "edited", time and ticks, and a menu (its button,
//! shown on hover or focus, right click or long press) with reply, edit,
//! delete and copy. Reply, edit and delete are the chat's business: the
//! row asks for them with the signals `reply-requested`, `edit-requested`
//! and `delete-requested`, which the chat view connects.

use gtk::subclass::prelude::*;
use gtk::{gdk, gio, glib, prelude::*, CompositeTemplate};

use crate::i18n::tr;
use crate::models::{format, Message, MessageStatus, Trust};

/// The signals by which a row asks for what its menu offers.
pub const REPLY_REQUESTED: &str = "reply-requested";
pub const EDIT_REQUESTED: &str = "edit-requested";
pub const DELETE_REQUESTED: &str = "delete-requested";

mod imp {
    use std::cell::RefCell;
    use std::sync::OnceLock;

    use glib::subclass::Signal;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "message_row.ui")]
    #[properties(wrapper_type = super::MessageRow)]
    pub struct MessageRow {
        #[template_child]
        pub day_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub line: TemplateChild<gtk::Box>,
        #[template_child]
        pub avatar: TemplateChild<adw::Avatar>,
        #[template_child]
        pub bubble: TemplateChild<gtk::Box>,
        #[template_child]
        pub sender_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub quote_box: TemplateChild<gtk::Box>,
        #[template_child]
        pub quote_sender: TemplateChild<gtk::Label>,
        #[template_child]
        pub quote_text: TemplateChild<gtk::Label>,
        #[template_child]
        pub warning_box: TemplateChild<gtk::Box>,
        #[template_child]
        pub warning_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub body_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub edited_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub time_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub ticks_sending: TemplateChild<gtk::Label>,
        #[template_child]
        pub ticks_sent: TemplateChild<gtk::Label>,
        #[template_child]
        pub ticks_delivered: TemplateChild<gtk::Label>,
        #[template_child]
        pub ticks_read: TemplateChild<gtk::Label>,
        #[template_child]
        pub ticks_failed: TemplateChild<gtk::Label>,
        #[template_child]
        pub menu_button: TemplateChild<gtk::MenuButton>,
        #[property(get, set = Self::set_message, explicit_notify, nullable)]
        pub message: RefCell<Option<Message>>,
        pub handlers: RefCell<Vec<glib::SignalHandlerId>>,
        pub popover: RefCell<Option<gtk::PopoverMenu>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for MessageRow {
        const NAME: &'static str = "FerrogramMessageRow";
        type Type = super::MessageRow;
        type ParentType = gtk::Box;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
            klass.install_action("message.reply", None, |row, _, _| {
                row.request(REPLY_REQUESTED);
            });
            klass.install_action("message.edit", None, |row, _, _| {
                row.request(EDIT_REQUESTED);
            });
            klass.install_action("message.delete", None, |row, _, _| {
                row.request(DELETE_REQUESTED);
            });
            klass.install_action("message.copy", None, |row, _, _| {
                if let Some(message) = row.message() {
                    row.clipboard().set_text(&message.text());
                }
            });
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for MessageRow {
        fn signals() -> &'static [Signal] {
            static SIGNALS: OnceLock<Vec<Signal>> = OnceLock::new();
            SIGNALS.get_or_init(|| {
                [REPLY_REQUESTED, EDIT_REQUESTED, DELETE_REQUESTED]
                    .into_iter()
                    .map(|name| {
                        Signal::builder(name)
                            .param_types([Message::static_type()])
                            .build()
                    })
                    .collect()
            })
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            let click = gtk::GestureClick::new();
            click.set_button(gdk::BUTTON_SECONDARY);
            click.connect_pressed(glib::clone!(
                #[weak]
                obj,
                move |gesture, _, x, y| {
                    gesture.set_state(gtk::EventSequenceState::Claimed);
                    obj.show_menu(x, y);
                }
            ));
            self.bubble.add_controller(click);
            let press = gtk::GestureLongPress::new();
            press.connect_pressed(glib::clone!(
                #[weak]
                obj,
                move |gesture, x, y| {
                    gesture.set_state(gtk::EventSequenceState::Claimed);
                    obj.show_menu(x, y);
                }
            ));
            self.bubble.add_controller(press);
            // The same menu from a button, for the keyboard and assistive
            // technologies; built when opened, as the message may change.
            self.menu_button.set_create_popup_func(glib::clone!(
                #[weak]
                obj,
                move |button| {
                    button.set_menu_model(obj.menu_model().as_ref());
                    let Some(popover) = button.popover() else {
                        return;
                    };
                    // Stays visible while its menu is open (CSS fades it otherwise).
                    button.add_css_class("open");
                    popover.connect_closed(glib::clone!(
                        #[weak]
                        button,
                        move |_| {
                            button.remove_css_class("open");
                            // Built again on the next opening: the row may
                            // show another message by then (rows are recycled).
                            glib::idle_add_local_once(glib::clone!(
                                #[weak]
                                button,
                                move || button.set_menu_model(None::<&gio::MenuModel>)
                            ));
                        }
                    ));
                }
            ));
        }

        fn dispose(&self) {
            self.set_message(None);
            if let Some(popover) = self.popover.take() {
                popover.unparent();
            }
        }
    }
    impl WidgetImpl for MessageRow {}
    impl BoxImpl for MessageRow {}

    impl MessageRow {
        fn set_message(&self, message: Option<Message>) {
            if *self.message.borrow() == message {
                return;
            }
            if let Some(old) = self.message.take() {
                for id in self.handlers.take() {
                    old.disconnect(id);
                }
            }
            let obj = self.obj();
            if let Some(message) = &message {
                let handler = message.connect_notify_local(
                    None,
                    glib::clone!(
                        #[weak]
                        obj,
                        move |_, _| obj.update()
                    ),
                );
                self.handlers.borrow_mut().push(handler);
            }
            self.message.replace(message);
            let menu_open = self.menu_button.popover().is_some_and(|p| p.is_visible());
            if !menu_open {
                self.menu_button.set_menu_model(None::<&gio::MenuModel>);
            }
            obj.update();
            obj.notify_message();
        }
    }
}

glib::wrapper! {
    pub struct MessageRow(ObjectSubclass<imp::MessageRow>)
        @extends gtk::Box, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

impl MessageRow {
    pub fn new() -> Self {
        glib::Object::new()
    }

    /// Emits `signal` (one of the `*_REQUESTED`) for the message shown.
    fn request(&self, signal: &str) {
        if let Some(message) = self.message() {
            self.emit_by_name::<()>(signal, &[&message]);
        }
    }

    /// Calls `f` with the message when the row emits `signal`.
    pub fn connect_requested(&self, signal: &str, f: impl Fn(&Message) + 'static) {
        self.connect_closure(
            signal,
            false,
            glib::closure_local!(move |_: &Self, message: &Message| f(message)),
        );
    }

    /// Reply, edit, copy and delete, as far as they apply to this message.
    fn menu_model(&self) -> Option<gio::Menu> {
        let message = self.message().filter(|m| !m.deleted())?;
        let menu = gio::Menu::new();
        if message.seq() > 0 {
            menu.append(Some(&tr("Reply")), Some("message.reply"));
        }
        if message.can_modify() && message.trust() == Trust::Valid {
            menu.append(Some(&tr("Edit")), Some("message.edit"));
        }
        if message.trust() != Trust::Invalid {
            menu.append(Some(&tr("Copy Text")), Some("message.copy"));
        }
        if message.can_modify() {
            menu.append(Some(&tr("Delete for Everyone")), Some("message.delete"));
        }
        (menu.n_items() > 0).then_some(menu)
    }

    fn show_menu(&self, x: f64, y: f64) {
        let Some(menu) = self.menu_model() else {
            return;
        };
        let imp = self.imp();
        if let Some(old) = imp.popover.take() {
            old.unparent();
        }
        let popover = gtk::PopoverMenu::from_model(Some(&menu));
        popover.set_parent(&*imp.bubble);
        popover.set_has_arrow(false);
        popover.set_pointing_to(Some(&gdk::Rectangle::new(x as i32, y as i32, 1, 1)));
        popover.popup();
        imp.popover.replace(Some(popover));
    }

    fn update(&self) {
        let imp = self.imp();
        let Some(message) = self.message() else {
            return;
        };
        let own = message.is_own();
        let separator = message.day_separator();
        imp.day_label.set_visible(!separator.is_empty());
        imp.day_label.set_text(&separator);

        imp.line.set_halign(if own {
            gtk::Align::End
        } else {
            gtk::Align::Start
        });
        // The menu button sits on the bubble's inner side.
        if own {
            imp.line
                .reorder_child_after(&*imp.menu_button, None::<&gtk::Widget>);
        } else {
            imp.line
                .reorder_child_after(&*imp.menu_button, Some(&*imp.bubble));
        }
        imp.menu_button.set_visible(!message.deleted());
        if own {
            imp.bubble.add_css_class("own");
        } else {
            imp.bubble.remove_css_class("own");
        }
        let show_sender = message.show_sender();
        imp.avatar.set_visible(show_sender);
        imp.sender_label.set_visible(show_sender);
        let sender = message.sender_name();
        imp.sender_label.set_text(&sender);
        imp.avatar.set_text(Some(&sender));

        let quoted = message.reply_to() > 0;
        imp.quote_box.set_visible(quoted);
        imp.quote_sender.set_text(&message.reply_sender());
        imp.quote_sender
            .set_visible(!message.reply_sender().is_empty());
        imp.quote_text.set_text(&message.reply_preview());

        let emoji_only = message.emoji_only() && !message.deleted();
        if emoji_only {
            imp.bubble.add_css_class("emoji-only");
        } else {
            imp.bubble.remove_css_class("emoji-only");
        }
        match (message.deleted(), message.trust()) {
            (true, _) => {
                imp.warning_box.set_visible(false);
                imp.body_label.set_markup(&format!(
                    "<i>{}</i>",
                    crate::models::markdown::escaped(&tr("Message deleted"))
                ));
            }
            (false, Trust::Invalid) => {
                // Never shown as if it were real text.
                imp.warning_box.set_visible(true);
                imp.warning_label.set_text(&tr(
                    "This message failed verification: it may be forged or damaged, and is not shown.",
                ));
                imp.body_label.set_visible(false);
            }
            (false, trust) => {
                imp.warning_box.set_visible(trust == Trust::KeyChanged);
                imp.warning_label.set_text(&tr(
                    "Signed with a new key of the sender. Compare safety numbers before trusting it.",
                ));
                imp.body_label.set_visible(true);
                imp.body_label.set_markup(&message.markup());
            }
        }
        if message.deleted() {
            imp.body_label.set_visible(true);
        }

        imp.edited_label
            .set_visible(message.edited() && !message.deleted());
        imp.time_label
            .set_text(&format::time_of_day(message.sent_at()));
        let status = own.then(|| message.status());
        for (label, shown_for) in [
            (&imp.ticks_sending, MessageStatus::Sending),
            (&imp.ticks_sent, MessageStatus::Sent),
            (&imp.ticks_delivered, MessageStatus::Delivered),
            (&imp.ticks_read, MessageStatus::Read),
            (&imp.ticks_failed, MessageStatus::Failed),
        ] {
            label.set_visible(status == Some(shown_for));
        }
    }
}

impl Default for MessageRow {
    fn default() -> Self {
        Self::new()
    }
}

//! The open chat: header (name, presence or typing, members), a banner when
//! the contact's key changed, the messages, and the composer (Enter sends,
//! Shift+Enter adds a line, emoji chooser, reply and edit modes).

use adw::prelude::*;
use gtk::subclass::prelude::*;
use gtk::{gdk, glib, CompositeTemplate};

use super::message_row::{DELETE_REQUESTED, EDIT_REQUESTED, REPLY_REQUESTED};
use super::{ContactDialog, MessageRow};
use crate::error::messenger_message;
use crate::i18n::{tr, tr_args, trn};
use crate::messaging::Messaging;
use crate::models::{format, Chat, Message};
use crate::signed_in::SignedInSession;

/// How often "typing" is sent while the user keeps typing.
const TYPING_INTERVAL_US: i64 = 3_000_000;

/// What the composer does with its text.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ComposerMode {
    #[default]
    New,
    Reply(Message),
    Edit(Message),
}

/// What the view does when a row asks for it (reply, edit, delete).
type RowAction = fn(&ChatView, &Message);

mod imp {
    use std::cell::{Cell, RefCell};
    use std::sync::OnceLock;

    use glib::subclass::Signal;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "chat_view.ui")]
    #[properties(wrapper_type = super::ChatView)]
    pub struct ChatView {
        #[template_child]
        pub window_title: TemplateChild<adw::WindowTitle>,
        #[template_child]
        pub security_button: TemplateChild<gtk::Button>,
        #[template_child]
        pub stack: TemplateChild<gtk::Stack>,
        #[template_child]
        pub key_banner: TemplateChild<gtk::Revealer>,
        #[template_child]
        pub key_banner_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub earlier_revealer: TemplateChild<gtk::Revealer>,
        #[template_child]
        pub earlier_button: TemplateChild<gtk::Button>,
        #[template_child]
        pub scroller: TemplateChild<gtk::ScrolledWindow>,
        #[template_child]
        pub message_list: TemplateChild<gtk::ListView>,
        #[template_child]
        pub mode_revealer: TemplateChild<gtk::Revealer>,
        #[template_child]
        pub mode_icon: TemplateChild<gtk::Image>,
        #[template_child]
        pub mode_title: TemplateChild<gtk::Label>,
        #[template_child]
        pub mode_text: TemplateChild<gtk::Label>,
        #[template_child]
        pub text_view: TemplateChild<gtk::TextView>,
        #[template_child]
        pub emoji_button: TemplateChild<gtk::MenuButton>,
        #[property(get, set = Self::set_chat, explicit_notify, nullable)]
        pub chat: RefCell<Option<Chat>>,
        #[property(get, set)]
        pub folded: Cell<bool>,
        /// The signed-in session whose chat is shown.
        #[property(get, set, nullable)]
        pub session: RefCell<Option<SignedInSession>>,
        pub mode: RefCell<ComposerMode>,
        /// Keep the newest message in view while the user is at the bottom.
        pub stick_to_bottom: Cell<bool>,
        pub last_typing_sent: Cell<i64>,
        pub chat_handlers: RefCell<Vec<(glib::Object, glib::SignalHandlerId)>>,
        pub clock: RefCell<Option<glib::SourceId>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ChatView {
        const NAME: &'static str = "FerrogramChatView";
        type Type = super::ChatView;
        type ParentType = gtk::Box;

        fn class_init(klass: &mut Self::Class) {
            MessageRow::ensure_type();
            klass.bind_template();
            klass.bind_template_instance_callbacks();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for ChatView {
        fn signals() -> &'static [Signal] {
            static SIGNALS: OnceLock<Vec<Signal>> = OnceLock::new();
            SIGNALS.get_or_init(|| vec![Signal::builder("back").build()])
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            self.stick_to_bottom.set(true);

            let factory = gtk::SignalListItemFactory::new();
            factory.connect_setup(glib::clone!(
                #[weak]
                obj,
                move |_, item| {
                    let item = item.downcast_ref::<gtk::ListItem>().expect("a list item");
                    item.set_activatable(false);
                    item.set_selectable(false);
                    let row = MessageRow::new();
                    // The row's menu asks; this view answers.
                    let actions: [(&str, RowAction); 3] = [
                        (REPLY_REQUESTED, super::ChatView::start_reply),
                        (EDIT_REQUESTED, super::ChatView::start_edit),
                        (DELETE_REQUESTED, super::ChatView::confirm_delete),
                    ];
                    for (signal, action) in actions {
                        let view = obj.downgrade();
                        row.connect_requested(signal, move |message| {
                            if let Some(view) = view.upgrade() {
                                action(&view, message);
                            }
                        });
                    }
                    item.set_child(Some(&row));
                }
            ));
            factory.connect_bind(|_, item| {
                let item = item.downcast_ref::<gtk::ListItem>().expect("a list item");
                let message = item.item().and_downcast::<Message>();
                if let Some(row) = item.child().and_downcast::<MessageRow>() {
                    row.set_message(message.as_ref());
                }
            });
            factory.connect_unbind(|_, item| {
                let item = item.downcast_ref::<gtk::ListItem>().expect("a list item");
                if let Some(row) = item.child().and_downcast::<MessageRow>() {
                    row.set_message(None::<&Message>);
                }
            });
            self.message_list.set_factory(Some(&factory));

            let adjustment = self.scroller.vadjustment();
            adjustment.connect_value_changed(glib::clone!(
                #[weak]
                obj,
                move |adj| {
                    let at_bottom = adj.value() + adj.page_size() >= adj.upper() - 48.0;
                    obj.imp().stick_to_bottom.set(at_bottom);
                }
            ));
            adjustment.connect_upper_notify(glib::clone!(
                #[weak]
                obj,
                move |_| {
                    if obj.imp().stick_to_bottom.get() {
                        obj.scroll_to_bottom();
                    }
                }
            ));

            let keys = gtk::EventControllerKey::new();
            keys.set_propagation_phase(gtk::PropagationPhase::Capture);
            keys.connect_key_pressed(glib::clone!(
                #[weak]
                obj,
                #[upgrade_or]
                glib::Propagation::Proceed,
                move |_, key, _, modifiers| {
                    let enter = matches!(
                        key,
                        gdk::Key::Return | gdk::Key::KP_Enter | gdk::Key::ISO_Enter
                    );
                    if enter && !modifiers.contains(gdk::ModifierType::SHIFT_MASK) {
                        obj.send();
                        glib::Propagation::Stop
                    } else if key == gdk::Key::Escape
                        && *obj.imp().mode.borrow() != ComposerMode::New
                    {
                        obj.set_mode(ComposerMode::New);
                        glib::Propagation::Stop
                    } else {
                        glib::Propagation::Proceed
                    }
                }
            ));
            self.text_view.add_controller(keys);
            self.text_view.buffer().connect_changed(glib::clone!(
                #[weak]
                obj,
                move |buffer| {
                    if buffer.char_count() > 0 {
                        obj.maybe_send_typing();
                    }
                }
            ));
            // Presence and "last seen" age while the chat is open.
            let clock = glib::timeout_add_seconds_local(
                30,
                glib::clone!(
                    #[weak]
                    obj,
                    #[upgrade_or]
                    glib::ControlFlow::Break,
                    move || {
                        obj.update_header();
                        glib::ControlFlow::Continue
                    }
                ),
            );
            self.clock.replace(Some(clock));
        }

        fn dispose(&self) {
            self.set_chat(None);
            if let Some(clock) = self.clock.take() {
                clock.remove();
            }
        }
    }
    impl WidgetImpl for ChatView {}
    impl BoxImpl for ChatView {}

    impl ChatView {
        fn set_chat(&self, chat: Option<Chat>) {
            if *self.chat.borrow() == chat {
                return;
            }
            for (object, id) in self.chat_handlers.take() {
                object.disconnect(id);
            }
            let obj = self.obj();
            self.chat.replace(chat);
            let chat = self.chat.borrow().clone();
            obj.set_mode(ComposerMode::New);
            self.text_view.buffer().set_text("");
            match &chat {
                None => {
                    self.message_list.set_model(None::<&gtk::NoSelection>);
                    self.stack.set_visible_child_name("empty");
                    self.window_title.set_title("");
                    self.window_title.set_subtitle("");
                    self.security_button.set_visible(false);
                }
                Some(chat) => {
                    let messages = chat.messages();
                    self.message_list
                        .set_model(Some(&gtk::NoSelection::new(Some(messages.clone()))));
                    self.stack.set_visible_child_name("chat");
                    self.security_button.set_visible(!chat.is_group());
                    let mut handlers = self.chat_handlers.borrow_mut();
                    for name in ["title", "typing", "member-count"] {
                        let id = chat.connect_notify_local(
                            Some(name),
                            glib::clone!(
                                #[weak]
                                obj,
                                move |_, _| obj.update_header()
                            ),
                        );
                        handlers.push((chat.clone().upcast(), id));
                    }
                    if let Some(peer) = chat.peer() {
                        for name in ["online", "last-seen", "key-changed", "display-name"] {
                            let id = peer.connect_notify_local(
                                Some(name),
                                glib::clone!(
                                    #[weak]
                                    obj,
                                    move |_, _| obj.update_header()
                                ),
                            );
                            handlers.push((peer.clone().upcast(), id));
                        }
                    }
                    for name in ["has-more", "loading"] {
                        let id = messages.connect_notify_local(
                            Some(name),
                            glib::clone!(
                                #[weak]
                                obj,
                                move |_, _| obj.update_earlier()
                            ),
                        );
                        handlers.push((messages.clone().upcast(), id));
                    }
                    let id = messages.connect_items_changed(glib::clone!(
                        #[weak]
                        obj,
                        move |_, _, _, added| {
                            if added > 0 {
                                obj.mark_read_if_visible();
                            }
                        }
                    ));
                    handlers.push((messages.clone().upcast(), id));
                    drop(handlers);
                    self.stick_to_bottom.set(true);
                    obj.scroll_to_bottom();
                    obj.update_header();
                    obj.update_earlier();
                    obj.mark_read_if_visible();
                    if messages.is_empty() {
                        obj.load_earlier();
                    }
                    self.text_view.grab_focus();
                }
            }
            obj.notify_chat();
        }
    }
}

glib::wrapper! {
    pub struct ChatView(ObjectSubclass<imp::ChatView>)
        @extends gtk::Box, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

#[gtk::template_callbacks]
impl ChatView {
    fn update_header(&self) {
        let imp = self.imp();
        let Some(chat) = self.chat() else { return };
        imp.window_title.set_title(&chat.title());
        let typing = chat.typing();
        let subtitle = if !typing.is_empty() {
            typing
        } else if chat.is_group() {
            trn("{n} member", "{n} members", chat.member_count(), &[])
        } else if let Some(peer) = chat.peer() {
            format::presence(peer.online(), peer.last_seen(), glib::real_time() / 1000)
        } else {
            String::new()
        };
        imp.window_title.set_subtitle(&subtitle);
        let changed = chat.peer().filter(crate::models::User::key_changed);
        imp.key_banner.set_reveal_child(changed.is_some());
        if let Some(peer) = changed {
            imp.key_banner_label.set_text(&tr_args(
                "{name}'s security key has changed. This can mean a new device, or someone in between. Compare your safety number before you trust new messages.",
                &[("name", &peer.name())],
            ));
        }
    }

    fn update_earlier(&self) {
        let imp = self.imp();
        let Some(chat) = self.chat() else { return };
        let messages = chat.messages();
        let more = messages.has_more() && !messages.loading();
        imp.earlier_revealer.set_reveal_child(more);
        // Hidden, not only folded away, so that assistive technologies offer
        // it only when there is something to load.
        imp.earlier_button.set_visible(more);
    }

    fn scroll_to_bottom(&self) {
        glib::idle_add_local_once(glib::clone!(
            #[weak(rename_to = view)]
            self,
            move || {
                let adj = view.imp().scroller.vadjustment();
                adj.set_value(adj.upper() - adj.page_size());
            }
        ));
    }

    fn messaging(&self) -> Option<Messaging> {
        self.session().and_then(|s| s.messaging())
    }

    /// Marks the chat read when a person can see it (window active, view shown).
    pub fn mark_read_if_visible(&self) {
        let Some(chat) = self.chat() else { return };
        let active = self
            .root()
            .and_downcast::<gtk::Window>()
            .is_some_and(|w| w.is_active());
        if active && self.is_mapped() {
            if let Some(messaging) = self.messaging() {
                messaging.mark_read(&chat);
            }
        }
    }

    fn maybe_send_typing(&self) {
        let Some(chat) = self.chat() else { return };
        let now = glib::monotonic_time();
        if now - self.imp().last_typing_sent.get() < TYPING_INTERVAL_US {
            return;
        }
        self.imp().last_typing_sent.set(now);
        if let Some(messaging) = self.messaging() {
            messaging.typing(&chat);
        }
    }

    fn load_earlier(&self) {
        let Some(chat) = self.chat() else { return };
        let Some(messaging) = self.messaging() else {
            return;
        };
        let messages = chat.messages();
        if messages.loading() {
            return;
        }
        messages.set_loading(true);
        glib::spawn_future_local(async move {
            let result = messaging.load_earlier(&chat).await;
            chat.messages().set_loading(false);
            if let Err(e) = result {
                messaging.toast(&messenger_message(&e));
            }
        });
    }

    fn set_mode(&self, mode: ComposerMode) {
        let imp = self.imp();
        let (icon, title, text) = match &mode {
            ComposerMode::New => (None, String::new(), String::new()),
            ComposerMode::Reply(m) => (
                Some("mail-reply-sender-symbolic"),
                tr_args("Reply to {name}", &[("name", &m.sender_name())]),
                m.preview(),
            ),
            ComposerMode::Edit(m) => (
                Some("document-edit-symbolic"),
                tr("Edit Message"),
                m.preview(),
            ),
        };
        imp.mode_icon.set_icon_name(icon);
        imp.mode_title.set_text(&title);
        imp.mode_text.set_text(&text);
        imp.mode_revealer
            .set_reveal_child(mode != ComposerMode::New);
        imp.mode.replace(mode);
    }

    /// Answers `message` (from its menu).
    pub fn start_reply(&self, message: &Message) {
        self.set_mode(ComposerMode::Reply(message.clone()));
        self.imp().text_view.grab_focus();
    }

    /// Edits an own message in the composer (from its menu).
    pub fn start_edit(&self, message: &Message) {
        let imp = self.imp();
        self.set_mode(ComposerMode::Edit(message.clone()));
        imp.text_view.buffer().set_text(&message.text());
        imp.text_view.grab_focus();
    }

    /// Asks before deleting an own message for everyone (from its menu).
    pub fn confirm_delete(&self, message: &Message) {
        let dialog = adw::MessageDialog::new(
            self.root().and_downcast_ref::<gtk::Window>(),
            Some(&tr("Delete Message?")),
            Some(&tr(
                "The message will be deleted for everyone in this chat. This cannot be undone.",
            )),
        );
        dialog.add_response("cancel", &tr("_Cancel"));
        dialog.add_response("delete", &tr("_Delete for Everyone"));
        dialog.set_response_appearance("delete", adw::ResponseAppearance::Destructive);
        dialog.set_default_response(Some("cancel"));
        dialog.set_close_response("cancel");
        let message = message.clone();
        dialog.connect_response(
            None,
            glib::clone!(
                #[weak(rename_to = view)]
                self,
                move |_, response| {
                    if response != "delete" {
                        return;
                    }
                    let (Some(chat), Some(messaging)) = (view.chat(), view.messaging()) else {
                        return;
                    };
                    let message = message.clone();
                    glib::spawn_future_local(async move {
                        if let Err(e) = messaging.delete(&chat, &message).await {
                            messaging.toast(&messenger_message(&e));
                        }
                    });
                }
            ),
        );
        dialog.present();
    }

    fn send(&self) {
        let imp = self.imp();
        let Some(chat) = self.chat() else { return };
        let Some(messaging) = self.messaging() else {
            return;
        };
        let buffer = imp.text_view.buffer();
        let text = buffer
            .text(&buffer.start_iter(), &buffer.end_iter(), false)
            .trim()
            .to_owned();
        if text.is_empty() {
            return;
        }
        buffer.set_text("");
        let mode = imp.mode.replace(ComposerMode::New);
        self.set_mode(ComposerMode::New);
        self.imp().stick_to_bottom.set(true);
        match mode {
            ComposerMode::Edit(message) => {
                glib::spawn_future_local(async move {
                    if let Err(e) = messaging.edit(&chat, &message, &text).await {
                        messaging.toast(&messenger_message(&e));
                    }
                });
            }
            ComposerMode::Reply(message) => messaging.send(&chat, &text, message.seq()),
            ComposerMode::New => messaging.send(&chat, &text, 0),
        }
    }

    #[template_callback]
    fn on_send(&self) {
        self.send();
        self.imp().text_view.grab_focus();
    }

    #[template_callback]
    fn on_back(&self) {
        self.emit_by_name::<()>("back", &[]);
    }

    #[template_callback]
    fn on_cancel_mode(&self) {
        self.set_mode(ComposerMode::New);
    }

    #[template_callback]
    fn on_emoji_picked(&self, emoji: &str) {
        let buffer = self.imp().text_view.buffer();
        buffer.insert_at_cursor(emoji);
        self.imp().text_view.grab_focus();
    }

    #[template_callback]
    fn on_load_earlier(&self) {
        self.load_earlier();
    }

    #[template_callback]
    fn on_edge_reached(&self, position: gtk::PositionType) {
        if position == gtk::PositionType::Top
            && self.chat().is_some_and(|c| c.messages().has_more())
        {
            self.load_earlier();
        }
    }

    #[template_callback]
    fn on_security(&self) {
        let Some(peer) = self.chat().and_then(|c| c.peer()) else {
            return;
        };
        let Some(session) = self.session() else {
            return;
        };
        let dialog = ContactDialog::new(&session, &peer);
        dialog.set_transient_for(self.root().and_downcast_ref::<gtk::Window>());
        dialog.present();
    }
}

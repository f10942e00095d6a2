//! The signed-in main view: an adaptive leaflet of the chat list and the
//! open chat. Narrow windows show one at a time, like a phone.

use adw::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};

use super::{ChatView, Sidebar};
use crate::models::Chat;
use crate::signed_in::SignedInSession;

mod imp {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "main_view.ui")]
    #[properties(wrapper_type = super::MainView)]
    pub struct MainView {
        #[template_child]
        pub leaflet: TemplateChild<adw::Leaflet>,
        #[template_child]
        pub sidebar: TemplateChild<Sidebar>,
        #[template_child]
        pub chat_view: TemplateChild<ChatView>,
        /// The signed-in session shown (none after it ended).
        #[property(get, set = Self::set_session, nullable)]
        pub session: RefCell<Option<SignedInSession>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for MainView {
        const NAME: &'static str = "FerrogramMainView";
        type Type = super::MainView;
        type ParentType = adw::Bin;

        fn class_init(klass: &mut Self::Class) {
            Sidebar::ensure_type();
            ChatView::ensure_type();
            klass.bind_template();
            klass.bind_template_instance_callbacks();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for MainView {}
    impl WidgetImpl for MainView {}
    impl BinImpl for MainView {}

    impl MainView {
        fn set_session(&self, session: Option<SignedInSession>) {
            self.sidebar
                .set_chats(session.as_ref().map(SignedInSession::chats).as_ref());
            self.sidebar
                .set_account(session.as_ref().map(SignedInSession::account).as_ref());
            self.sidebar.set_session(session.as_ref());
            self.chat_view.set_chat(None::<&Chat>);
            self.chat_view.set_session(session.as_ref());
            self.session.replace(session);
        }
    }
}

glib::wrapper! {
    pub struct MainView(ObjectSubclass<imp::MainView>)
        @extends adw::Bin, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget;
}

#[gtk::template_callbacks]
impl MainView {
    /// Shows `session`'s chat list and account, no chat open.
    pub fn show_session(&self, session: &SignedInSession) {
        self.set_session(Some(session));
        self.imp().chat_view.set_chat(None::<&Chat>);
    }

    pub fn open_chat(&self, chat: &Chat) {
        let imp = self.imp();
        imp.sidebar.select_chat(chat);
        imp.chat_view.set_chat(Some(chat));
        imp.leaflet.set_visible_child(&*imp.chat_view);
    }

    pub fn open_chat_by_id(&self, chat_id: i64) {
        if let Some(chat) = self.session().and_then(|s| s.chats().by_id(chat_id)) {
            self.open_chat(&chat);
        }
    }

    /// The chat on screen, if any (new messages there are read at once).
    pub fn current_chat(&self) -> Option<Chat> {
        let imp = self.imp();
        let visible = !imp.leaflet.is_folded()
            || imp.leaflet.visible_child().as_ref() == Some(imp.chat_view.upcast_ref());
        imp.chat_view.chat().filter(|_| visible)
    }

    pub fn mark_read_if_visible(&self) {
        self.imp().chat_view.mark_read_if_visible();
    }

    #[template_callback]
    fn on_chat_activated(&self, chat: &Chat) {
        self.open_chat(chat);
    }

    #[template_callback]
    fn on_back(&self) {
        let imp = self.imp();
        imp.leaflet.set_visible_child(&*imp.sidebar);
    }
}

//! The main window: a stack of the sign-in screens and the main view, under
//! a toast overlay for errors and notices. The pages ask for another screen
//! with the `nav.*` actions ([`super::nav`]), and get the [`AppState`] as a
//! property.

use adw::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};

use super::{nav, ConnectPage, LoginPage, MainView, SignupPage, VerifyPage};
use crate::app_state::AppState;
use crate::signed_in::SignedInSession;

mod imp {
    use std::cell::OnceCell;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "window.ui")]
    #[properties(wrapper_type = super::FerrogramWindow)]
    pub struct FerrogramWindow {
        #[template_child]
        pub toast_overlay: TemplateChild<adw::ToastOverlay>,
        #[template_child]
        pub stack: TemplateChild<gtk::Stack>,
        #[template_child]
        pub connect_page: TemplateChild<ConnectPage>,
        #[template_child]
        pub login_page: TemplateChild<LoginPage>,
        #[template_child]
        pub signup_page: TemplateChild<SignupPage>,
        #[template_child]
        pub verify_page: TemplateChild<VerifyPage>,
        #[template_child]
        pub main_view: TemplateChild<MainView>,
        /// The settings and the sign-in state, for the sign-in pages.
        #[property(get, construct_only)]
        pub state: OnceCell<AppState>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for FerrogramWindow {
        const NAME: &'static str = "FerrogramWindow";
        type Type = super::FerrogramWindow;
        type ParentType = adw::ApplicationWindow;

        fn class_init(klass: &mut Self::Class) {
            ConnectPage::ensure_type();
            LoginPage::ensure_type();
            SignupPage::ensure_type();
            VerifyPage::ensure_type();
            MainView::ensure_type();
            klass.bind_template();
            klass.install_action(nav::CONNECT, None, |window, _, _| window.show_connect());
            klass.install_action(
                nav::LOGIN,
                Some(glib::VariantTy::new("(ss)").expect("a type")),
                |window, _, args| {
                    let (email, notice) = nav::login_args(args);
                    window.show_login(email.as_deref(), notice.as_deref());
                },
            );
            klass.install_action(nav::SIGNUP, None, |window, _, _| window.show_signup());
            klass.install_action(
                nav::VERIFY,
                Some(glib::VariantTy::new("(st)").expect("a type")),
                |window, _, args| {
                    let (email, cooldown_secs) = nav::verify_args(args);
                    window.show_verify(&email, cooldown_secs);
                },
            );
            klass.install_action(nav::MAIN, None, |window, _, _| {
                if let Some(signed_in) = window.state().signed_in() {
                    window.show_main(&signed_in);
                }
            });
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for FerrogramWindow {
        fn constructed(&self) {
            self.parent_constructed();
            let state = self.obj().state();
            self.connect_page.set_state(Some(&state));
            self.login_page.set_state(Some(&state));
            self.signup_page.set_state(Some(&state));
            self.verify_page.set_state(Some(&state));
            // Coming back to the window reads the open chat.
            self.obj().connect_is_active_notify(|window| {
                if window.is_active() {
                    window.main_view().mark_read_if_visible();
                }
            });
        }
    }
    impl WidgetImpl for FerrogramWindow {}
    impl WindowImpl for FerrogramWindow {}
    impl ApplicationWindowImpl for FerrogramWindow {}
    impl AdwApplicationWindowImpl for FerrogramWindow {}
}

glib::wrapper! {
    pub struct FerrogramWindow(ObjectSubclass<imp::FerrogramWindow>)
        @extends adw::ApplicationWindow, gtk::ApplicationWindow, gtk::Window, gtk::Widget,
        @implements gtk::gio::ActionGroup, gtk::gio::ActionMap, gtk::Buildable,
            gtk::ConstraintTarget, gtk::Native, gtk::Root, gtk::ShortcutManager;
}

impl FerrogramWindow {
    pub fn new(app: &impl IsA<gtk::Application>, state: &AppState) -> Self {
        glib::Object::builder()
            .property("application", app)
            .property("state", state)
            .build()
    }

    /// Shows a short notice at the bottom of the window.
    pub fn toast(&self, text: &str) {
        let toast = adw::Toast::new(text);
        toast.set_timeout(5);
        self.imp().toast_overlay.add_toast(toast);
    }

    pub fn show_loading(&self) {
        self.imp().stack.set_visible_child_name("loading");
    }

    pub fn show_connect(&self) {
        self.imp().connect_page.reset();
        self.imp().stack.set_visible_child_name("connect");
    }

    pub fn show_login(&self, email: Option<&str>, notice: Option<&str>) {
        self.imp().login_page.prepare(email, notice);
        self.imp().stack.set_visible_child_name("login");
    }

    pub fn show_signup(&self) {
        self.imp().signup_page.reset();
        self.imp().stack.set_visible_child_name("signup");
    }

    pub fn show_verify(&self, email: &str, cooldown_secs: u64) {
        self.imp().verify_page.prepare(email, cooldown_secs);
        self.imp().stack.set_visible_child_name("verify");
    }

    /// Shows `session`'s chats and account.
    pub fn show_main(&self, session: &SignedInSession) {
        self.imp().main_view.show_session(session);
        self.imp().stack.set_visible_child_name("main");
    }

    /// Lets go of the ended session (its chats and account).
    pub fn show_signed_out(&self) {
        self.imp().main_view.set_session(None::<&SignedInSession>);
    }

    pub fn main_view(&self) -> MainView {
        self.imp().main_view.get()
    }
}

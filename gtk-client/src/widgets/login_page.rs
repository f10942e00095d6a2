//! The Log In screen (also used to unlock the keys of a remembered session).

use gtk::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};
use zeroize::Zeroizing;

use super::loading_button::{show_error, LoadingButton};
use super::nav;
use crate::app_state::AppState;
use crate::error::user_message;
use crate::i18n::{tr, tr_args};
use crate::runtime;

mod imp {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "login_page.ui")]
    #[properties(wrapper_type = super::LoginPage)]
    pub struct LoginPage {
        #[template_child]
        pub server_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub notice_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub email_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub password_entry: TemplateChild<gtk::PasswordEntry>,
        #[template_child]
        pub error_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub login_button: TemplateChild<LoadingButton>,
        /// The settings and the sign-in state.
        #[property(get, set, nullable)]
        pub state: RefCell<Option<AppState>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for LoginPage {
        const NAME: &'static str = "FerrogramLoginPage";
        type Type = super::LoginPage;
        type ParentType = gtk::Box;

        fn class_init(klass: &mut Self::Class) {
            LoadingButton::ensure_type();
            klass.bind_template();
            klass.bind_template_instance_callbacks();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for LoginPage {}
    impl WidgetImpl for LoginPage {}
    impl BoxImpl for LoginPage {}
}

glib::wrapper! {
    pub struct LoginPage(ObjectSubclass<imp::LoginPage>)
        @extends gtk::Box, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

#[gtk::template_callbacks]
impl LoginPage {
    pub fn prepare(&self, email: Option<&str>, notice: Option<&str>) {
        let imp = self.imp();
        let server = self
            .state()
            .and_then(|s| s.client())
            .map(|c| c.base_url().to_owned())
            .unwrap_or_default();
        imp.server_label
            .set_text(&tr_args("on {server}", &[("server", &server)]));
        imp.notice_label.set_text(notice.unwrap_or(""));
        imp.notice_label.set_visible(notice.is_some());
        if let Some(email) = email {
            imp.email_entry.set_text(email);
        }
        imp.password_entry.set_text("");
        self.show_error(None);
        self.set_busy(false);
        if imp.email_entry.text().is_empty() {
            imp.email_entry.grab_focus();
        } else {
            imp.password_entry.grab_focus();
        }
    }

    fn show_error(&self, text: Option<&str>) {
        show_error(&self.imp().error_label, text);
    }

    fn set_busy(&self, busy: bool) {
        let imp = self.imp();
        imp.login_button.set_loading(busy);
        imp.email_entry.set_sensitive(!busy);
        imp.password_entry.set_sensitive(!busy);
    }

    #[template_callback]
    fn on_login(&self) {
        let imp = self.imp();
        if imp.login_button.loading() {
            return;
        }
        let Some(state) = self.state() else { return };
        let Some(client) = state.client() else {
            nav::show_connect(self);
            return;
        };
        let email = imp.email_entry.text().trim().to_owned();
        let password = Zeroizing::new(imp.password_entry.text().to_string());
        if email.is_empty() || password.is_empty() {
            self.show_error(Some(&tr("Enter your email and password.")));
            return;
        }
        self.show_error(None);
        self.set_busy(true);
        let device = tr_args(
            "Ferrogram for GNOME on {host}",
            &[("host", glib::host_name().as_str())],
        );
        glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = page)]
            self,
            async move {
                let result = if let Some((session, locked)) = state.unlockable(&email) {
                    // The session from the keyring: open its keys, no new log-in.
                    let s = session.clone();
                    runtime::run(async move { s.unlock(&password, &locked).await })
                        .await
                        .map(|()| session)
                } else {
                    runtime::run(
                        async move { client.login(&email, &password, Some(&device)).await },
                    )
                    .await
                    .map(std::sync::Arc::new)
                };
                page.set_busy(false);
                match result {
                    Ok(session) => {
                        page.imp().password_entry.set_text("");
                        state.sign_in(session).await;
                    }
                    Err(e) => page.show_error(Some(&user_message(&e))),
                }
            }
        ));
    }

    #[template_callback]
    fn on_signup(&self) {
        nav::show_signup(self);
    }

    #[template_callback]
    fn on_verify(&self) {
        let email = self.imp().email_entry.text();
        nav::show_verify(self, email.trim(), 0);
    }

    #[template_callback]
    fn on_change_server(&self) {
        nav::show_connect(self);
    }
}

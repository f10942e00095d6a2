//! The Verify Email screen: the 6-digit code from the mail, and a new code
//! on request with the server's cool-down counted down on the button.

use gtk::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};

use super::loading_button::{show_error, LoadingButton};
use super::nav;
use crate::app_state::AppState;
use crate::error::user_message;
use crate::i18n::{tr, tr_args, trn};
use crate::runtime;

mod imp {
    use std::cell::{Cell, RefCell};

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "verify_page.ui")]
    #[properties(wrapper_type = super::VerifyPage)]
    pub struct VerifyPage {
        #[template_child]
        pub sent_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub code_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub error_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub done_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub verify_button: TemplateChild<LoadingButton>,
        #[template_child]
        pub resend_button: TemplateChild<gtk::Button>,
        #[property(get)]
        pub email: RefCell<String>,
        /// Seconds until another code may be requested.
        #[property(get)]
        pub cooldown: Cell<u32>,
        pub ticker: RefCell<Option<glib::SourceId>>,
        /// The settings and the sign-in state.
        #[property(get, set, nullable)]
        pub state: RefCell<Option<AppState>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for VerifyPage {
        const NAME: &'static str = "FerrogramVerifyPage";
        type Type = super::VerifyPage;
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
    impl ObjectImpl for VerifyPage {
        fn dispose(&self) {
            if let Some(id) = self.ticker.take() {
                id.remove();
            }
        }
    }
    impl WidgetImpl for VerifyPage {}
    impl BoxImpl for VerifyPage {}
}

glib::wrapper! {
    pub struct VerifyPage(ObjectSubclass<imp::VerifyPage>)
        @extends gtk::Box, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

#[gtk::template_callbacks]
impl VerifyPage {
    pub fn prepare(&self, email: &str, cooldown_secs: u64) {
        let imp = self.imp();
        imp.email.replace(email.to_owned());
        self.notify_email();
        imp.sent_label.set_text(&if email.is_empty() {
            tr("Enter the code from the email we sent you.")
        } else {
            tr_args(
                "We sent a 6-digit code to {email}. Enter it below.",
                &[("email", email)],
            )
        });
        imp.code_entry.set_text("");
        imp.done_label.set_visible(false);
        self.show_error(None);
        imp.verify_button.set_loading(false);
        self.start_cooldown(cooldown_secs);
        imp.code_entry.grab_focus();
    }

    fn show_error(&self, text: Option<&str>) {
        show_error(&self.imp().error_label, text);
    }

    fn start_cooldown(&self, secs: u64) {
        let imp = self.imp();
        if let Some(id) = imp.ticker.take() {
            id.remove();
        }
        imp.cooldown.set(secs.min(3600) as u32);
        self.update_resend();
        if secs == 0 {
            return;
        }
        let id = glib::timeout_add_seconds_local(
            1,
            glib::clone!(
                #[weak(rename_to = page)]
                self,
                #[upgrade_or]
                glib::ControlFlow::Break,
                move || {
                    let imp = page.imp();
                    let left = imp.cooldown.get().saturating_sub(1);
                    imp.cooldown.set(left);
                    page.update_resend();
                    if left == 0 {
                        imp.ticker.take();
                        glib::ControlFlow::Break
                    } else {
                        glib::ControlFlow::Continue
                    }
                }
            ),
        );
        imp.ticker.replace(Some(id));
    }

    fn update_resend(&self) {
        let imp = self.imp();
        let left = imp.cooldown.get();
        self.notify_cooldown();
        if left == 0 {
            imp.resend_button.set_label(&tr("Send a New Code"));
            imp.resend_button.set_sensitive(true);
        } else {
            imp.resend_button.set_label(&trn(
                "Send a new code in {n} second",
                "Send a new code in {n} seconds",
                left,
                &[],
            ));
            imp.resend_button.set_sensitive(false);
        }
    }

    #[template_callback]
    fn on_back(&self) {
        let email = self.imp().email.borrow().clone();
        nav::show_login(
            self,
            Some(&email).filter(|e| !e.is_empty()).map(String::as_str),
            None,
        );
    }

    #[template_callback]
    fn on_verify(&self) {
        let Some(state) = self.state() else { return };
        let Some(client) = state.client() else { return };
        let email = self.imp().email.borrow().clone();
        let code = self.imp().code_entry.text().trim().to_owned();
        if email.is_empty() {
            self.show_error(Some(&tr("Go back and enter your email address first.")));
            return;
        }
        self.show_error(None);
        glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = page)]
            self,
            async move {
                let verifying =
                    runtime::run(async move { client.verify_code(&email, &code).await });
                let imp = page.imp();
                if imp
                    .verify_button
                    .submit(&imp.error_label, verifying)
                    .await
                    .is_none()
                {
                    return;
                }
                imp.done_label
                    .set_text(&tr("Your email address is verified. You can log in now."));
                imp.done_label.set_visible(true);
                // A signed-in account (settings) learns it at once.
                if let Some(signed_in) = state.signed_in() {
                    signed_in.account().set_verified(true);
                    nav::show_main(&page);
                } else {
                    let email = imp.email.borrow().clone();
                    nav::show_login(
                        &page,
                        Some(&email),
                        Some(&tr("Your email address is verified. Log in to start.")),
                    );
                }
            }
        ));
    }

    #[template_callback]
    fn on_resend(&self) {
        let Some(state) = self.state() else { return };
        let Some(client) = state.client() else { return };
        let email = self.imp().email.borrow().clone();
        if email.is_empty() {
            self.show_error(Some(&tr("Go back and enter your email address first.")));
            return;
        }
        self.imp().resend_button.set_sensitive(false);
        glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = page)]
            self,
            async move {
                let result =
                    runtime::run(async move { client.resend_verification(&email).await }).await;
                match result {
                    Ok(r) => {
                        page.show_error(None);
                        state.toast(&tr("A new code is on its way."));
                        page.start_cooldown(r.cooldown_secs);
                    }
                    Err(e) => {
                        page.show_error(Some(&user_message(&e)));
                        page.start_cooldown(e.retry_after().unwrap_or(0));
                    }
                }
            }
        ));
    }
}

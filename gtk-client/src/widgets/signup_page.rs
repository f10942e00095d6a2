//! The Sign Up screen: email, username, display name, password twice with a
//! strength hint. Creating the account generates the key pair (seconds).

use ferrogram_client::RegisterParams;
use gtk::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};

use super::loading_button::{show_error, LoadingButton};
use super::nav;
use crate::app_state::AppState;
use crate::i18n::tr;
use crate::models::password;
use crate::runtime;

mod imp {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "signup_page.ui")]
    #[properties(wrapper_type = super::SignupPage)]
    pub struct SignupPage {
        #[template_child]
        pub email_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub handle_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub name_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub password_entry: TemplateChild<gtk::PasswordEntry>,
        #[template_child]
        pub confirm_entry: TemplateChild<gtk::PasswordEntry>,
        #[template_child]
        pub strength_bar: TemplateChild<gtk::LevelBar>,
        #[template_child]
        pub strength_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub error_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub create_button: TemplateChild<LoadingButton>,
        /// The settings and the sign-in state.
        #[property(get, set, nullable)]
        pub state: RefCell<Option<AppState>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for SignupPage {
        const NAME: &'static str = "FerrogramSignupPage";
        type Type = super::SignupPage;
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
    impl ObjectImpl for SignupPage {
        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            self.password_entry.connect_changed(glib::clone!(
                #[weak]
                obj,
                move |_| obj.update_strength()
            ));
            obj.update_strength();
        }
    }
    impl WidgetImpl for SignupPage {}
    impl BoxImpl for SignupPage {}
}

glib::wrapper! {
    pub struct SignupPage(ObjectSubclass<imp::SignupPage>)
        @extends gtk::Box, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

#[gtk::template_callbacks]
impl SignupPage {
    pub fn reset(&self) {
        let imp = self.imp();
        for entry in [&*imp.password_entry, &*imp.confirm_entry] {
            entry.set_text("");
        }
        self.show_error(None);
        imp.create_button.set_loading(false);
        imp.email_entry.grab_focus();
    }

    fn update_strength(&self) {
        let imp = self.imp();
        let text = imp.password_entry.text();
        imp.strength_bar
            .set_value(f64::from(password::score(&text)));
        imp.strength_label.set_text(&password::hint(&text));
    }

    fn show_error(&self, text: Option<&str>) {
        show_error(&self.imp().error_label, text);
    }

    #[template_callback]
    fn on_back(&self) {
        nav::show_login(self, None, None);
    }

    #[template_callback]
    fn on_create(&self) {
        let imp = self.imp();
        if imp.create_button.loading() {
            return;
        }
        let Some(state) = self.state() else { return };
        let Some(client) = state.client() else { return };
        let email = imp.email_entry.text().trim().to_owned();
        let handle = imp.handle_entry.text().trim().to_lowercase();
        let name = imp.name_entry.text().trim().to_owned();
        let pw = imp.password_entry.text().to_string();
        if email.is_empty() || handle.is_empty() || name.is_empty() {
            self.show_error(Some(&tr("Fill in every field.")));
            return;
        }
        if password::score(&pw) == 0 {
            self.show_error(Some(&password::hint(&pw)));
            return;
        }
        if pw != imp.confirm_entry.text().as_str() {
            self.show_error(Some(&tr("The two passwords differ.")));
            return;
        }
        self.show_error(None);
        state.toast(&tr("Creating your keys… this takes a few seconds."));
        glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = page)]
            self,
            async move {
                let params = RegisterParams::new(email.clone(), handle, name, pw);
                let registering = runtime::run(async move { client.register(params).await });
                let imp = page.imp();
                let Some(response) = imp
                    .create_button
                    .submit(&imp.error_label, registering)
                    .await
                else {
                    return;
                };
                page.reset();
                state.update_config(|c| c.last_email = Some(email.clone()));
                if response.verified {
                    nav::show_login(&page, Some(&email), None);
                } else {
                    nav::show_verify(&page, &email, 60);
                }
            }
        ));
    }
}

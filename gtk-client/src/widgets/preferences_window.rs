//! Settings: profile, email verification, the privacy setting "who can add
//! me to groups", password, account deletion, sessions with revoke, colour
//! scheme, and the server.

use adw::prelude::*;
use adw::subclass::prelude::*;
use ferrogram_client::proto::{GroupAddPolicy, SessionInfo, UpdateProfileRequest};
use ferrogram_client::{ClientError, Session};
use gtk::{glib, CompositeTemplate};
use zeroize::Zeroizing;

use super::nav;
use crate::app_state::AppState;
use crate::config::ColorScheme;
use crate::error::user_message;
use crate::i18n::{tr, tr_args, trn};
use crate::models::{format, password, Account};
use crate::runtime;
use crate::signed_in::SignedInSession;

mod imp {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "preferences_window.ui")]
    #[properties(wrapper_type = super::PreferencesWindow)]
    pub struct PreferencesWindow {
        #[template_child]
        pub name_row: TemplateChild<adw::EntryRow>,
        #[template_child]
        pub handle_row: TemplateChild<adw::EntryRow>,
        #[template_child]
        pub bio_row: TemplateChild<adw::EntryRow>,
        #[template_child]
        pub email_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub group_adds_row: TemplateChild<adw::ComboRow>,
        #[template_child]
        pub resend_button: TemplateChild<gtk::Button>,
        #[template_child]
        pub enter_code_button: TemplateChild<gtk::Button>,
        #[template_child]
        pub old_password_row: TemplateChild<adw::PasswordEntryRow>,
        #[template_child]
        pub new_password_row: TemplateChild<adw::PasswordEntryRow>,
        #[template_child]
        pub confirm_password_row: TemplateChild<adw::PasswordEntryRow>,
        #[template_child]
        pub strength_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub password_button: TemplateChild<gtk::Button>,
        #[template_child]
        pub sessions_group: TemplateChild<adw::PreferencesGroup>,
        #[template_child]
        pub system_check: TemplateChild<gtk::ToggleButton>,
        #[template_child]
        pub light_check: TemplateChild<gtk::ToggleButton>,
        #[template_child]
        pub dark_check: TemplateChild<gtk::ToggleButton>,
        #[template_child]
        pub server_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub keyring_row: TemplateChild<adw::ActionRow>,
        /// The signed-in session whose settings these are.
        #[property(get, set, construct_only)]
        pub session: RefCell<Option<SignedInSession>>,
        /// The settings (the colour scheme is kept there).
        #[property(get, set, construct_only)]
        pub state: RefCell<Option<AppState>>,
        pub session_rows: RefCell<Vec<adw::ActionRow>>,
        pub tasks: RefCell<Vec<glib::JoinHandle<()>>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for PreferencesWindow {
        const NAME: &'static str = "FerrogramPreferencesWindow";
        type Type = super::PreferencesWindow;
        type ParentType = adw::PreferencesWindow;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
            klass.bind_template_instance_callbacks();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for PreferencesWindow {
        fn constructed(&self) {
            self.parent_constructed();
            self.obj().load();
        }

        fn dispose(&self) {
            for task in self.tasks.take() {
                task.abort();
            }
        }
    }
    impl WidgetImpl for PreferencesWindow {}
    impl WindowImpl for PreferencesWindow {}
    impl AdwWindowImpl for PreferencesWindow {}
    impl PreferencesWindowImpl for PreferencesWindow {}
}

glib::wrapper! {
    pub struct PreferencesWindow(ObjectSubclass<imp::PreferencesWindow>)
        @extends adw::PreferencesWindow, adw::Window, gtk::Window, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Native,
            gtk::Root, gtk::ShortcutManager;
}

#[gtk::template_callbacks]
impl PreferencesWindow {
    pub fn new(state: &AppState, session: &SignedInSession) -> Self {
        glib::Object::builder()
            .property("state", state)
            .property("session", session)
            .build()
    }

    fn account(&self) -> Option<Account> {
        self.session().map(|s| s.account())
    }

    /// The client library's session (for the REST calls).
    fn client_session(&self) -> Option<std::sync::Arc<Session>> {
        self.session().map(|s| s.session())
    }

    /// The main window (this one is its transient), for its `nav.*`
    /// actions.
    fn main_window(&self) -> Option<gtk::Window> {
        self.transient_for()
    }

    fn toast(&self, text: &str) {
        self.add_toast(adw::Toast::new(text));
    }

    /// Runs `future` on the main loop, aborted if the window closes first.
    fn spawn(&self, future: impl std::future::Future<Output = ()> + 'static) {
        let handle = glib::spawn_future_local(future);
        self.imp().tasks.borrow_mut().push(handle);
    }

    /// Runs `request` on the client library's session off the main loop;
    /// `done` gets its answer, an error is a toast (aborted if the window
    /// closes first).
    fn call<T, Fut>(
        &self,
        request: impl FnOnce(std::sync::Arc<Session>) -> Fut,
        done: impl FnOnce(&Self, T) + 'static,
    ) where
        Fut: std::future::Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static,
    {
        let Some(session) = self.client_session() else {
            return;
        };
        let work = request(session);
        self.spawn(glib::clone!(
            #[weak(rename_to = window)]
            self,
            async move {
                match runtime::run(work).await {
                    Ok(answer) => done(&window, answer),
                    Err(e) => window.toast(&user_message(&e)),
                }
            }
        ));
    }

    fn load(&self) {
        let imp = self.imp();
        let Some(account) = self.account() else {
            return;
        };
        let user = account.user();
        imp.name_row.set_text(&user.display_name());
        imp.handle_row.set_text(&user.handle());
        imp.bio_row.set_text(&account.bio());
        self.update_email();
        self.load_group_adds();
        account.connect_verified_notify(glib::clone!(
            #[weak(rename_to = window)]
            self,
            move |_| window.update_email()
        ));
        self.on_new_password_changed();
        let scheme = self.state().map(|s| s.config().color_scheme);
        match scheme.unwrap_or_default() {
            ColorScheme::System => imp.system_check.set_active(true),
            ColorScheme::Light => imp.light_check.set_active(true),
            ColorScheme::Dark => imp.dark_check.set_active(true),
        }
        imp.server_row
            .set_subtitle(&glib::markup_escape_text(&account.server()));
        imp.keyring_row.set_subtitle(&if account.token_stored() {
            tr("Kept in your keyring: you stay logged in across restarts.")
        } else {
            tr("No keyring available: you are logged out when the app closes.")
        });
        self.load_sessions();
    }

    fn update_email(&self) {
        let imp = self.imp();
        let Some(account) = self.account() else {
            return;
        };
        imp.email_row
            .set_title(&glib::markup_escape_text(&account.email()));
        imp.email_row.set_subtitle(&if account.verified() {
            tr("Verified")
        } else {
            tr("Not verified: you can send messages once it is.")
        });
        imp.resend_button.set_visible(!account.verified());
        imp.enter_code_button.set_visible(!account.verified());
    }

    fn load_sessions(&self) {
        self.call(
            |session| async move { session.sessions().await },
            |window, list| window.show_sessions(&list),
        );
    }

    fn show_sessions(&self, sessions: &[SessionInfo]) {
        let imp = self.imp();
        for row in imp.session_rows.take() {
            imp.sessions_group.remove(&row);
        }
        let now = glib::real_time() / 1000;
        let mut rows = Vec::new();
        for info in sessions {
            let subtitle = if info.current {
                tr("This device")
            } else {
                tr_args(
                    "Last active {when}",
                    &[(
                        "when",
                        &format::list_time(info.last_seen_at.as_millis(), now),
                    )],
                )
            };
            let row = adw::ActionRow::builder()
                .title(glib::markup_escape_text(&info.device_name).as_str())
                .subtitle(glib::markup_escape_text(&subtitle).as_str())
                .build();
            if !info.current {
                let revoke = gtk::Button::builder()
                    .label(tr("Revoke"))
                    .valign(gtk::Align::Center)
                    .build();
                revoke.add_css_class("destructive-action");
                let id = info.id.clone();
                revoke.connect_clicked(glib::clone!(
                    #[weak(rename_to = window)]
                    self,
                    move |_| window.revoke(id.clone())
                ));
                row.add_suffix(&revoke);
            }
            imp.sessions_group.add(&row);
            rows.push(row);
        }
        imp.session_rows.replace(rows);
    }

    fn revoke(&self, id: ferrogram_core::ids::SessionId) {
        self.call(
            |session| async move { session.revoke_session(&id).await },
            |window, ()| {
                window.toast(&tr("Session revoked."));
                window.load_sessions();
            },
        );
    }

    #[template_callback]
    fn on_revoke_others(&self) {
        self.call(
            |session| async move { session.revoke_other_sessions().await },
            |window, n| {
                window.toast(&trn(
                    "{n} other session logged out.",
                    "{n} other sessions logged out.",
                    n,
                    &[],
                ));
                window.load_sessions();
            },
        );
    }

    /// The privacy row: filled from the server, then saved on each change.
    fn load_group_adds(&self) {
        const POLICIES: [GroupAddPolicy; 3] = [
            GroupAddPolicy::Everyone,
            GroupAddPolicy::ChatPartners,
            GroupAddPolicy::Nobody,
        ];
        let row = self.imp().group_adds_row.get();
        let labels = [tr("Everyone"), tr("People I Chat With"), tr("Nobody")];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        row.set_model(Some(&gtk::StringList::new(&labels)));
        let Some(session) = self.client_session() else {
            return;
        };
        self.spawn(glib::clone!(
            #[weak(rename_to = window)]
            self,
            async move {
                let me = match runtime::run(async move { session.me().await }).await {
                    Ok(me) => me,
                    Err(e) => return window.toast(&user_message(&e)),
                };
                let row = window.imp().group_adds_row.get();
                let index = POLICIES
                    .iter()
                    .position(|p| *p == me.who_can_add_me)
                    .unwrap_or(1);
                row.set_selected(u32::try_from(index).unwrap_or(1));
                row.set_sensitive(true);
                row.connect_selected_notify(glib::clone!(
                    #[weak]
                    window,
                    move |row| {
                        let Some(policy) = POLICIES.get(row.selected() as usize).copied() else {
                            return;
                        };
                        let update = UpdateProfileRequest {
                            who_can_add_me: Some(policy),
                            ..UpdateProfileRequest::default()
                        };
                        window.call(
                            |session| async move { session.update_profile(update).await },
                            |window, _| window.toast(&tr("Privacy setting saved.")),
                        );
                    }
                ));
            }
        ));
    }

    #[template_callback]
    fn on_apply_profile(&self) {
        let imp = self.imp();
        let Some(account) = self.account() else {
            return;
        };
        let user = account.user();
        let name = imp.name_row.text().trim().to_owned();
        let handle = imp.handle_row.text().trim().to_lowercase();
        let bio = imp.bio_row.text().trim().to_owned();
        let update = UpdateProfileRequest {
            display_name: (name != user.display_name()).then_some(name),
            handle: (handle != user.handle()).then_some(handle),
            bio: (bio != account.bio()).then_some(bio),
            who_can_add_me: None,
        };
        if update.display_name.is_none() && update.handle.is_none() && update.bio.is_none() {
            return;
        }
        self.call(
            |session| async move { session.update_profile(update).await },
            move |window, me| {
                user.set_display_name(me.display_name.clone());
                user.set_handle(me.handle.clone());
                account.set_bio(me.bio.clone());
                window.toast(&tr("Profile saved."));
            },
        );
    }

    #[template_callback]
    fn on_resend(&self) {
        let (Some(client), Some(account)) = (self.session().map(|s| s.client()), self.account())
        else {
            return;
        };
        let email = account.email();
        self.imp().resend_button.set_sensitive(false);
        self.spawn(glib::clone!(
            #[weak(rename_to = window)]
            self,
            async move {
                let result =
                    runtime::run(async move { client.resend_verification(&email).await }).await;
                match result {
                    Ok(r) => window.toast(&trn(
                        "A new code is on its way. You can ask again in {n} second.",
                        "A new code is on its way. You can ask again in {n} seconds.",
                        r.cooldown_secs.min(u64::from(u32::MAX)) as u32,
                        &[],
                    )),
                    Err(e) => window.toast(&user_message(&e)),
                }
                window.imp().resend_button.set_sensitive(true);
            }
        ));
    }

    #[template_callback]
    fn on_enter_code(&self) {
        let (Some(window), Some(account)) = (self.main_window(), self.account()) else {
            return;
        };
        nav::show_verify(&window, &account.email(), 0);
        self.close();
    }

    #[template_callback]
    fn on_new_password_changed(&self) {
        let imp = self.imp();
        let text = imp.new_password_row.text();
        imp.strength_row.set_title(&password::hint(&text));
    }

    #[template_callback]
    fn on_change_password(&self) {
        let imp = self.imp();
        let Some(session) = self.client_session() else {
            return;
        };
        let old = Zeroizing::new(imp.old_password_row.text().to_string());
        let new = Zeroizing::new(imp.new_password_row.text().to_string());
        if password::score(&new) == 0 {
            self.toast(&password::hint(&new));
            return;
        }
        if new.as_str() != imp.confirm_password_row.text().as_str() {
            self.toast(&tr("The two new passwords differ."));
            return;
        }
        if !session.has_keys() {
            self.toast(&tr("Log in with your password first."));
            return;
        }
        imp.password_button.set_sensitive(false);
        self.spawn(glib::clone!(
            #[weak(rename_to = window)]
            self,
            async move {
                let changing = session.clone();
                let result =
                    runtime::run(async move { changing.change_password(&old, &new).await }).await;
                let imp = window.imp();
                imp.password_button.set_sensitive(true);
                match result {
                    Ok(revoked) => {
                        for row in [
                            &*imp.old_password_row,
                            &*imp.new_password_row,
                            &*imp.confirm_password_row,
                        ] {
                            row.set_text("");
                        }
                        window.toast(&trn(
                            "Password changed. {n} other session was logged out.",
                            "Password changed. {n} other sessions were logged out.",
                            revoked,
                            &[],
                        ));
                        window.load_sessions();
                        // The wrap key changed with the password.
                        if let Some(signed_in) = window.session() {
                            if let Err(e) = signed_in.keep().await {
                                tracing::info!("{e}");
                            }
                        }
                    }
                    Err(e) => window.toast(&user_message(&e)),
                }
            }
        ));
    }

    #[template_callback]
    fn on_delete_account(&self) {
        let Some(account) = self.account() else {
            return;
        };
        let dialog = adw::MessageDialog::new(
            Some(self),
            Some(&tr("Delete Your Account?")),
            Some(&tr_args(
                "The account {email} will be deleted from the server with your profile and every session. Your chats will no longer be readable by you on any device, and the username becomes free for others. This cannot be undone. Enter your password to confirm.",
                &[("email", &account.email())],
            )),
        );
        let entry = gtk::PasswordEntry::builder()
            .show_peek_icon(true)
            .placeholder_text(tr("Password"))
            .activates_default(true)
            .build();
        dialog.set_extra_child(Some(&entry));
        dialog.add_response("cancel", &tr("_Cancel"));
        dialog.add_response("delete", &tr("_Delete Account"));
        dialog.set_response_appearance("delete", adw::ResponseAppearance::Destructive);
        dialog.set_default_response(Some("cancel"));
        dialog.set_close_response("cancel");
        dialog.connect_response(
            None,
            glib::clone!(
                #[weak(rename_to = window)]
                self,
                #[weak]
                entry,
                move |_, response| {
                    if response == "delete" {
                        window.delete_account(Zeroizing::new(entry.text().to_string()));
                    }
                }
            ),
        );
        dialog.present();
    }

    fn delete_account(&self, password: Zeroizing<String>) {
        let Some(session) = self.client_session() else {
            return;
        };
        self.spawn(glib::clone!(
            #[weak(rename_to = window)]
            self,
            async move {
                match runtime::run(async move { session.delete_account(&password).await }).await {
                    Ok(()) => {
                        window.close();
                        if let Some(signed_in) = window.session() {
                            signed_in.end(Some(&tr("Your account was deleted."))).await;
                        }
                    }
                    Err(e) => window.toast(&user_message(&e)),
                }
            }
        ));
    }

    #[template_callback]
    fn on_style_toggled(&self) {
        let imp = self.imp();
        let scheme = if imp.light_check.is_active() {
            ColorScheme::Light
        } else if imp.dark_check.is_active() {
            ColorScheme::Dark
        } else {
            ColorScheme::System
        };
        if let Some(state) = self.state() {
            state.set_color_scheme(scheme);
        }
    }

    #[template_callback]
    fn on_change_server(&self) {
        let dialog = adw::MessageDialog::new(
            Some(self),
            Some(&tr("Change Server?")),
            Some(&tr("You will be logged out of this server.")),
        );
        dialog.add_response("cancel", &tr("_Cancel"));
        dialog.add_response("change", &tr("_Log Out and Change"));
        dialog.set_response_appearance("change", adw::ResponseAppearance::Destructive);
        dialog.set_close_response("cancel");
        dialog.connect_response(
            None,
            glib::clone!(
                #[weak(rename_to = window)]
                self,
                move |_, response| {
                    if response != "change" {
                        return;
                    }
                    let (signed_in, main) = (window.session(), window.main_window());
                    window.close();
                    glib::spawn_future_local(async move {
                        if let Some(signed_in) = signed_in {
                            signed_in.log_out().await;
                        }
                        if let Some(w) = main {
                            nav::show_connect(&w);
                        }
                    });
                }
            ),
        );
        dialog.present();
    }
}

//! A contact's encryption details: the safety number to compare in person,
//! their key fingerprint, and "Mark as Verified".

use adw::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};

use crate::error::messenger_message;
use crate::i18n::tr;
use crate::models::User;
use crate::signed_in::SignedInSession;

mod imp {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "contact_dialog.ui")]
    #[properties(wrapper_type = super::ContactDialog)]
    pub struct ContactDialog {
        #[template_child]
        pub avatar: TemplateChild<adw::Avatar>,
        #[template_child]
        pub name_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub handle_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub status_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub safety_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub fingerprint_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub verify_button: TemplateChild<gtk::Button>,
        #[property(get, set, construct_only)]
        pub user: RefCell<Option<User>>,
        #[property(get, set, construct_only)]
        pub session: RefCell<Option<SignedInSession>>,
        pub task: RefCell<Option<glib::JoinHandle<()>>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ContactDialog {
        const NAME: &'static str = "FerrogramContactDialog";
        type Type = super::ContactDialog;
        type ParentType = adw::Window;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
            klass.bind_template_instance_callbacks();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for ContactDialog {
        fn constructed(&self) {
            self.parent_constructed();
            self.obj().load();
        }

        fn dispose(&self) {
            if let Some(task) = self.task.take() {
                task.abort();
            }
        }
    }
    impl WidgetImpl for ContactDialog {}
    impl WindowImpl for ContactDialog {}
    impl AdwWindowImpl for ContactDialog {}
}

glib::wrapper! {
    pub struct ContactDialog(ObjectSubclass<imp::ContactDialog>)
        @extends adw::Window, gtk::Window, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Native,
            gtk::Root, gtk::ShortcutManager;
}

#[gtk::template_callbacks]
impl ContactDialog {
    pub fn new(session: &SignedInSession, user: &User) -> Self {
        glib::Object::builder()
            .property("session", session)
            .property("user", user)
            .build()
    }

    fn update_status(&self, user: &User) {
        let imp = self.imp();
        let text = if user.key_changed() {
            tr("Their key changed since you last talked. Compare the new safety number.")
        } else if user.verified() {
            tr("You verified this contact.")
        } else {
            tr("Not verified yet.")
        };
        imp.status_label.set_text(&text);
        imp.verify_button
            .set_visible(!user.verified() || user.key_changed());
        imp.verify_button.set_label(&if user.key_changed() {
            tr("Accept New Key and Mark as Verified")
        } else {
            tr("Mark as Verified")
        });
    }

    fn load(&self) {
        let Some(user) = self.user() else { return };
        let imp = self.imp();
        imp.avatar.set_text(Some(&user.name()));
        imp.name_label.set_text(&user.name());
        imp.handle_label.set_text(&format!("@{}", user.handle()));
        imp.safety_label.set_text(&tr("Loading…"));
        self.update_status(&user);
        let Some(messaging) = self.session().and_then(|s| s.messaging()) else {
            return;
        };
        let task = glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = dialog)]
            self,
            async move {
                let imp = dialog.imp();
                match messaging.contact_keys(&user).await {
                    Ok(keys) => {
                        imp.safety_label
                            .set_text(&group_safety_number(&keys.safety_number));
                        imp.fingerprint_label.set_text(&keys.fingerprint);
                        imp.verify_button.set_sensitive(true);
                        dialog.update_status(&user);
                    }
                    Err(e) => imp.safety_label.set_text(&messenger_message(&e)),
                }
            }
        ));
        imp.task.replace(Some(task));
    }

    #[template_callback]
    fn on_verify(&self) {
        let Some(user) = self.user() else { return };
        let Some(messaging) = self.session().and_then(|s| s.messaging()) else {
            return;
        };
        self.imp().verify_button.set_sensitive(false);
        glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = dialog)]
            self,
            async move {
                if let Err(e) = messaging.mark_verified(&user).await {
                    messaging.toast(&messenger_message(&e));
                }
                dialog.imp().verify_button.set_sensitive(true);
                dialog.update_status(&user);
            }
        ));
    }
}

/// Lays out the digits in rows of four groups, as people read them aloud.
fn group_safety_number(number: &str) -> String {
    let groups: Vec<&str> = number.split_whitespace().collect();
    groups
        .chunks(4)
        .map(|row| row.join("  "))
        .collect::<Vec<_>>()
        .join("\n")
}

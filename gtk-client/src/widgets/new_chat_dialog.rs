//! Start a chat: search people by username or name, click one for a direct
//! chat, or tick several and name a group.

use adw::prelude::*;
use adw::subclass::prelude::*;
use gtk::{glib, CompositeTemplate};

use crate::error::messenger_message;
use crate::i18n::{tr, tr_args};
use crate::models::{Chat, User};
use crate::signed_in::SignedInSession;

mod imp {
    use std::cell::{Cell, RefCell};
    use std::sync::OnceLock;

    use glib::subclass::Signal;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "new_chat_dialog.ui")]
    #[properties(wrapper_type = super::NewChatDialog)]
    pub struct NewChatDialog {
        #[template_child]
        pub search_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub title_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub results: TemplateChild<gtk::ListBox>,
        #[template_child]
        pub group_button: TemplateChild<gtk::Button>,
        #[property(get)]
        pub busy: Cell<bool>,
        #[property(get, set, construct_only)]
        pub session: RefCell<Option<SignedInSession>>,
        /// Found people with their tick boxes.
        pub rows: RefCell<Vec<(User, gtk::ToggleButton)>>,
        pub search: RefCell<Option<glib::JoinHandle<()>>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for NewChatDialog {
        const NAME: &'static str = "FerrogramNewChatDialog";
        type Type = super::NewChatDialog;
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
    impl ObjectImpl for NewChatDialog {
        fn signals() -> &'static [Signal] {
            static SIGNALS: OnceLock<Vec<Signal>> = OnceLock::new();
            // The chat was opened or made: whoever made the dialog shows it.
            SIGNALS.get_or_init(|| {
                vec![Signal::builder("chat-opened")
                    .param_types([Chat::static_type()])
                    .build()]
            })
        }

        fn dispose(&self) {
            if let Some(task) = self.search.take() {
                task.abort();
            }
        }
    }
    impl WidgetImpl for NewChatDialog {}
    impl WindowImpl for NewChatDialog {}
    impl AdwWindowImpl for NewChatDialog {}
}

glib::wrapper! {
    pub struct NewChatDialog(ObjectSubclass<imp::NewChatDialog>)
        @extends adw::Window, gtk::Window, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Native,
            gtk::Root, gtk::ShortcutManager;
}

#[gtk::template_callbacks]
impl NewChatDialog {
    pub fn new(session: &SignedInSession) -> Self {
        glib::Object::builder().property("session", session).build()
    }

    fn show_results(&self, users: &[User]) {
        let imp = self.imp();
        while let Some(row) = imp.results.row_at_index(0) {
            imp.results.remove(&row);
        }
        let mut rows = Vec::new();
        for user in users {
            let row = adw::ActionRow::builder()
                .title(glib::markup_escape_text(&user.name()).as_str())
                .subtitle(glib::markup_escape_text(&format!("@{}", user.handle())).as_str())
                .activatable(true)
                .build();
            let avatar = adw::Avatar::new(36, Some(&user.name()), true);
            row.add_prefix(&avatar);
            // A labelled toggle rather than a check box: GTK 4.8 gives
            // check boxes no accessible action, toggle buttons one.
            let check = gtk::ToggleButton::with_label(&tr("Add to Group"));
            check.set_valign(gtk::Align::Center);
            check.add_css_class("flat");
            check.set_tooltip_text(Some(&tr_args(
                "Add {name} to the group",
                &[("name", &user.name())],
            )));
            check.connect_toggled(glib::clone!(
                #[weak(rename_to = dialog)]
                self,
                move |_| dialog.on_selection_changed()
            ));
            row.add_suffix(&check);
            let open = gtk::Button::builder()
                .label(tr("Message"))
                .valign(gtk::Align::Center)
                .tooltip_text(tr("Open the direct chat"))
                .build();
            let index = rows.len();
            open.connect_clicked(glib::clone!(
                #[weak(rename_to = dialog)]
                self,
                move |_| dialog.open_direct_at(index)
            ));
            row.add_suffix(&open);
            row.set_activatable_widget(Some(&open));
            imp.results.append(&row);
            rows.push((user.clone(), check));
        }
        if users.is_empty() && !imp.search_entry.text().trim().is_empty() {
            let row = adw::ActionRow::builder()
                .title(tr("Nobody found"))
                .activatable(false)
                .build();
            imp.results.append(&row);
        }
        imp.rows.replace(rows);
        self.on_selection_changed();
    }

    fn ticked(&self) -> Vec<User> {
        self.imp()
            .rows
            .borrow()
            .iter()
            .filter(|(_, c)| c.is_active())
            .map(|(u, _)| u.clone())
            .collect()
    }

    fn opened(&self, result: Result<Chat, ferrogram_client::MessengerError>) {
        match result {
            Ok(chat) => {
                self.emit_by_name::<()>("chat-opened", &[&chat]);
                self.close();
            }
            Err(e) => {
                tracing::warn!("opening the chat: {e}");
                self.imp().busy.set(false);
                if let Some(session) = self.session() {
                    session.toast(&messenger_message(&e));
                }
            }
        }
    }

    #[template_callback]
    fn on_search_changed(&self) {
        let imp = self.imp();
        if let Some(task) = imp.search.take() {
            task.abort();
        }
        let query = imp.search_entry.text().trim().to_owned();
        if query.is_empty() {
            self.show_results(&[]);
            return;
        }
        let Some(session) = self.session() else {
            return;
        };
        let Some(messaging) = session.messaging() else {
            return;
        };
        let task = glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = dialog)]
            self,
            async move {
                match messaging.search_users(&query).await {
                    Ok(users) => dialog.show_results(&users),
                    Err(e) => session.report(&e),
                }
            }
        ));
        imp.search.replace(Some(task));
    }

    #[template_callback]
    fn on_selection_changed(&self) {
        let imp = self.imp();
        let ready = !self.ticked().is_empty() && !imp.title_entry.text().trim().is_empty();
        imp.group_button.set_sensitive(ready);
    }

    /// Enter in the search field opens a chat with the first person found.
    #[template_callback]
    fn on_search_activate(&self) {
        if self.ticked().is_empty() {
            self.open_direct_at(0);
        }
    }

    #[template_callback]
    fn on_row_activated(&self, row: &gtk::ListBoxRow) {
        if let Ok(index) = usize::try_from(row.index()) {
            self.open_direct_at(index);
        }
    }

    fn open_direct_at(&self, index: usize) {
        let imp = self.imp();
        if imp.busy.get() {
            return;
        }
        let Some(user) = imp.rows.borrow().get(index).map(|(u, _)| u.clone()) else {
            return;
        };
        let Some(messaging) = self.session().and_then(|s| s.messaging()) else {
            return;
        };
        imp.busy.set(true);
        glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = dialog)]
            self,
            async move {
                let result = messaging.open_direct(&user).await;
                dialog.opened(result);
            }
        ));
    }

    #[template_callback]
    fn on_create_group(&self) {
        let imp = self.imp();
        if imp.busy.get() {
            return;
        }
        let members = self.ticked();
        let title = imp.title_entry.text().trim().to_owned();
        let Some(messaging) = self.session().and_then(|s| s.messaging()) else {
            return;
        };
        imp.busy.set(true);
        glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = dialog)]
            self,
            async move {
                let result = messaging.create_group(&title, &members).await;
                dialog.opened(result);
            }
        ));
    }
}

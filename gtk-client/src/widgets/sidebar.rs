//! The chat list side: search, connection state, the chats most recent
//! first, and the buttons for a new chat and the main menu.

use gtk::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};

use super::{ChatRow, NewChatDialog};
use crate::i18n::tr;
use crate::models::{Account, Chat, ChatList, ConnectionState};
use crate::signed_in::SignedInSession;

mod imp {
    use std::cell::{Cell, OnceCell, RefCell};
    use std::sync::OnceLock;

    use glib::subclass::Signal;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "sidebar.ui")]
    #[properties(wrapper_type = super::Sidebar)]
    pub struct Sidebar {
        #[template_child]
        pub header_bar: TemplateChild<adw::HeaderBar>,
        #[template_child]
        pub window_title: TemplateChild<adw::WindowTitle>,
        #[template_child]
        pub search_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub connection_revealer: TemplateChild<gtk::Revealer>,
        #[template_child]
        pub connection_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub list_stack: TemplateChild<gtk::Stack>,
        #[template_child]
        pub list_view: TemplateChild<gtk::ListView>,
        #[property(get, set = Self::set_chats, nullable)]
        pub chats: RefCell<Option<ChatList>>,
        #[property(get, set = Self::set_account, nullable)]
        pub account: RefCell<Option<Account>>,
        /// The signed-in session (for the new chat dialog).
        #[property(get, set, nullable)]
        pub session: RefCell<Option<SignedInSession>>,
        /// The leaflet shows one side at a time.
        #[property(get, set)]
        pub folded: Cell<bool>,
        pub filter: OnceCell<gtk::CustomFilter>,
        pub selection: OnceCell<gtk::SingleSelection>,
        pub account_handlers: RefCell<Vec<glib::SignalHandlerId>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Sidebar {
        const NAME: &'static str = "FerrogramSidebar";
        type Type = super::Sidebar;
        type ParentType = gtk::Box;

        fn class_init(klass: &mut Self::Class) {
            ChatRow::ensure_type();
            klass.bind_template();
            klass.bind_template_instance_callbacks();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for Sidebar {
        fn signals() -> &'static [Signal] {
            static SIGNALS: OnceLock<Vec<Signal>> = OnceLock::new();
            SIGNALS.get_or_init(|| {
                vec![Signal::builder("chat-activated")
                    .param_types([Chat::static_type()])
                    .build()]
            })
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            let search = self.search_entry.clone();
            let filter = gtk::CustomFilter::new(move |item| {
                let query = search.text().trim().to_lowercase();
                if query.is_empty() {
                    return true;
                }
                item.downcast_ref::<Chat>().is_some_and(|chat| {
                    chat.title().to_lowercase().contains(&query)
                        || chat
                            .peer()
                            .is_some_and(|p| p.handle().to_lowercase().contains(&query))
                })
            });
            let filtered =
                gtk::FilterListModel::new(None::<gtk::gio::ListModel>, Some(filter.clone()));
            let selection = gtk::SingleSelection::new(Some(filtered));
            selection.set_autoselect(false);
            selection.set_can_unselect(true);
            let factory = gtk::SignalListItemFactory::new();
            factory.connect_setup(|_, item| {
                let item = item.downcast_ref::<gtk::ListItem>().expect("a list item");
                item.set_child(Some(&ChatRow::new()));
            });
            factory.connect_bind(|_, item| {
                let item = item.downcast_ref::<gtk::ListItem>().expect("a list item");
                let chat = item.item().and_downcast::<Chat>();
                if let Some(row) = item.child().and_downcast::<ChatRow>() {
                    row.set_chat(chat.as_ref());
                }
            });
            factory.connect_unbind(|_, item| {
                let item = item.downcast_ref::<gtk::ListItem>().expect("a list item");
                if let Some(row) = item.child().and_downcast::<ChatRow>() {
                    row.set_chat(None::<&Chat>);
                }
            });
            self.list_view.set_factory(Some(&factory));
            self.list_view.set_model(Some(&selection));
            selection.connect_items_changed(glib::clone!(
                #[weak]
                obj,
                move |_, _, _, _| obj.update_empty()
            ));
            let _ = self.filter.set(filter);
            let _ = self.selection.set(selection);
            obj.connect_folded_notify(|obj| {
                let imp = obj.imp();
                imp.header_bar.set_show_end_title_buttons(obj.folded());
            });
            self.header_bar.set_show_end_title_buttons(false);
            obj.update_empty();
        }
    }
    impl WidgetImpl for Sidebar {}
    impl BoxImpl for Sidebar {}

    impl Sidebar {
        fn set_chats(&self, chats: Option<ChatList>) {
            if let Some(selection) = self.selection.get() {
                if let Some(filtered) = selection.model().and_downcast::<gtk::FilterListModel>() {
                    filtered.set_model(chats.as_ref());
                }
            }
            self.chats.replace(chats);
            self.obj().update_empty();
        }

        fn set_account(&self, account: Option<Account>) {
            if let Some(old) = self.account.take() {
                for id in self.account_handlers.take() {
                    old.disconnect(id);
                }
            }
            if let Some(account) = &account {
                let obj = self.obj();
                let handler = account.connect_connection_notify(glib::clone!(
                    #[weak]
                    obj,
                    move |_| obj.update_connection()
                ));
                self.account_handlers.borrow_mut().push(handler);
            }
            self.account.replace(account);
            self.obj().update_connection();
        }
    }
}

glib::wrapper! {
    pub struct Sidebar(ObjectSubclass<imp::Sidebar>)
        @extends gtk::Box, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

#[gtk::template_callbacks]
impl Sidebar {
    /// Highlights `chat` in the list.
    pub fn select_chat(&self, chat: &Chat) {
        let Some(selection) = self.imp().selection.get() else {
            return;
        };
        for i in 0..selection.n_items() {
            if selection.item(i).and_downcast::<Chat>().as_ref() == Some(chat) {
                selection.set_selected(i);
                return;
            }
        }
    }

    fn update_empty(&self) {
        let imp = self.imp();
        let empty = imp.selection.get().is_none_or(|s| s.n_items() == 0);
        let searching = !imp.search_entry.text().is_empty();
        imp.list_stack
            .set_visible_child_name(if empty && !searching { "empty" } else { "list" });
    }

    fn update_connection(&self) {
        let imp = self.imp();
        let state = self
            .account()
            .map_or(ConnectionState::Offline, |a| a.connection());
        let (subtitle, banner) = match state {
            ConnectionState::Online => (String::new(), None),
            ConnectionState::Connecting => (tr("Connecting…"), Some(tr("Connecting…"))),
            ConnectionState::Offline => (
                tr("Offline"),
                Some(tr("Not connected. Retrying automatically…")),
            ),
        };
        imp.window_title.set_subtitle(&subtitle);
        imp.connection_label
            .set_text(banner.as_deref().unwrap_or(""));
        imp.connection_revealer.set_reveal_child(banner.is_some());
    }

    #[template_callback]
    fn on_search_changed(&self) {
        if let Some(filter) = self.imp().filter.get() {
            filter.changed(gtk::FilterChange::Different);
        }
        self.update_empty();
    }

    /// Enter in the search field opens the first chat found.
    #[template_callback]
    fn on_search_activate(&self) {
        let imp = self.imp();
        if imp.search_entry.text().trim().is_empty() {
            return;
        }
        self.on_row_activated(0);
        imp.search_entry.set_text("");
    }

    #[template_callback]
    fn on_row_activated(&self, position: u32) {
        let Some(selection) = self.imp().selection.get() else {
            return;
        };
        if let Some(chat) = selection.item(position).and_downcast::<Chat>() {
            self.emit_by_name::<()>("chat-activated", &[&chat]);
        }
    }

    #[template_callback]
    fn on_new_chat(&self) {
        let Some(session) = self.session() else {
            return;
        };
        let dialog = NewChatDialog::new(&session);
        // The chat opens as if chosen in the list.
        dialog.connect_closure(
            "chat-opened",
            false,
            glib::closure_local!(
                #[weak(rename_to = sidebar)]
                self,
                move |_: &NewChatDialog, chat: &Chat| {
                    sidebar.emit_by_name::<()>("chat-activated", &[chat]);
                }
            ),
        );
        dialog.set_transient_for(self.root().and_downcast_ref::<gtk::Window>());
        dialog.present();
    }
}

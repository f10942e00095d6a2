//! The Connect screen: host, port and TLS of the server. The address is
//! checked (`GET /api/v1/server`) before it is kept in the settings.

use ferrogram_client::{Client, ServerAddr};
use gtk::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};

use super::loading_button::{show_error, LoadingButton};
use super::nav;
use crate::app_state::AppState;
use crate::config::ServerSettings;
use crate::i18n::tr;
use crate::runtime;

mod imp {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "connect_page.ui")]
    #[properties(wrapper_type = super::ConnectPage)]
    pub struct ConnectPage {
        #[template_child]
        pub host_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub port_entry: TemplateChild<gtk::Entry>,
        #[template_child]
        pub tls_check: TemplateChild<gtk::CheckButton>,
        #[template_child]
        pub error_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub connect_button: TemplateChild<LoadingButton>,
        /// The settings and the sign-in state.
        #[property(get, set, nullable)]
        pub state: RefCell<Option<AppState>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ConnectPage {
        const NAME: &'static str = "FerrogramConnectPage";
        type Type = super::ConnectPage;
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
    impl ObjectImpl for ConnectPage {}
    impl WidgetImpl for ConnectPage {}
    impl BoxImpl for ConnectPage {}
}

glib::wrapper! {
    pub struct ConnectPage(ObjectSubclass<imp::ConnectPage>)
        @extends gtk::Box, gtk::Widget,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

#[gtk::template_callbacks]
impl ConnectPage {
    /// Fills the form from the settings.
    pub fn reset(&self) {
        let imp = self.imp();
        if let Some(server) = self.state().and_then(|s| s.config().server) {
            imp.host_entry.set_text(&server.host);
            imp.port_entry.set_text(&server.port.to_string());
            imp.tls_check.set_active(server.tls);
        }
        self.show_error(None);
        imp.connect_button.set_loading(false);
        imp.host_entry.grab_focus();
    }

    fn show_error(&self, text: Option<&str>) {
        show_error(&self.imp().error_label, text);
    }

    /// The settings as typed, or a sentence saying what is wrong.
    fn settings(&self) -> Result<ServerSettings, String> {
        let imp = self.imp();
        let host = imp.host_entry.text().trim().to_owned();
        let port = imp.port_entry.text().trim().to_owned();
        let port: u16 = match port.parse() {
            Ok(p) if p > 0 => p,
            _ => return Err(tr("The port is a number from 1 to 65535.")),
        };
        // The same checks as any address (no scheme, path or user part).
        ServerAddr::parse(&format!("{host}:{port}"))
            .map_err(|_| tr("Enter a host name or IP address without http:// or a path."))?;
        Ok(ServerSettings {
            host,
            port,
            tls: imp.tls_check.is_active(),
            ca_file: None,
        })
    }

    #[template_callback]
    fn on_connect(&self) {
        if self.imp().connect_button.loading() {
            return;
        }
        let Some(state) = self.state() else { return };
        let settings = match self.settings() {
            Ok(s) => s,
            Err(text) => {
                self.show_error(Some(&text));
                return;
            }
        };
        self.show_error(None);
        glib::spawn_future_local(glib::clone!(
            #[weak(rename_to = page)]
            self,
            async move {
                let connecting = runtime::run(Client::connect(settings.addr()));
                let imp = page.imp();
                let Some(client) = imp
                    .connect_button
                    .submit(&imp.error_label, connecting)
                    .await
                else {
                    return;
                };
                let changed = state.config().server.as_ref() != Some(&settings);
                state.update_config(|c| {
                    if changed {
                        c.last_email = None;
                    }
                    c.server = Some(settings);
                });
                state.set_client(client);
                nav::show_login(&page, state.config().last_email.as_deref(), None);
            }
        ));
    }
}

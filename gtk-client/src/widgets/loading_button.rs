//! The submit button of the sign-in forms (connect, log in, sign up,
//! verify): Enter in the form presses it; while the form's work
//! runs it shows a spinner and takes no second click.

use ferrogram_client::ClientError;
use gtk::subclass::prelude::*;
use gtk::{glib, prelude::*, CompositeTemplate};

use crate::error::user_message;

mod imp {
    use std::cell::{Cell, RefCell};

    use super::*;

    #[derive(Default, CompositeTemplate, glib::Properties)]
    #[template(file = "loading_button.ui")]
    #[properties(wrapper_type = super::LoadingButton)]
    pub struct LoadingButton {
        #[template_child]
        pub spinner: TemplateChild<gtk::Spinner>,
        #[template_child]
        pub label: TemplateChild<gtk::Label>,
        /// What the button says (the .ui gives the same accessible name).
        #[property(get, set = Self::set_text, explicit_notify)]
        pub text: RefCell<String>,
        /// The work runs: spinner shown, clicks ignored.
        #[property(get, set = Self::set_loading, explicit_notify)]
        pub loading: Cell<bool>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for LoadingButton {
        const NAME: &'static str = "FerrogramLoadingButton";
        type Type = super::LoadingButton;
        type ParentType = gtk::Button;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    #[glib::derived_properties]
    impl ObjectImpl for LoadingButton {
        fn constructed(&self) {
            self.parent_constructed();
            // Enter in a field of the shown form (`activates-default`)
            // presses this button: it is the window's default while shown.
            let obj = self.obj();
            obj.connect_map(|button| {
                if let Some(window) = button.root().and_downcast::<gtk::Window>() {
                    window.set_default_widget(Some(button));
                }
            });
            obj.connect_unmap(|button| {
                if let Some(window) = button.root().and_downcast::<gtk::Window>() {
                    if window.default_widget().as_ref() == Some(button.upcast_ref()) {
                        window.set_default_widget(None::<&gtk::Widget>);
                    }
                }
            });
        }
    }
    impl WidgetImpl for LoadingButton {}
    impl ButtonImpl for LoadingButton {}

    impl LoadingButton {
        fn set_text(&self, text: String) {
            if *self.text.borrow() == text {
                return;
            }
            self.label.set_text(&text);
            self.text.replace(text);
            self.obj().notify_text();
        }

        fn set_loading(&self, loading: bool) {
            if self.loading.get() == loading {
                return;
            }
            self.loading.set(loading);
            self.spinner.set_visible(loading);
            WidgetExt::set_sensitive(&*self.obj(), !loading);
            self.obj().notify_loading();
        }
    }
}

glib::wrapper! {
    pub struct LoadingButton(ObjectSubclass<imp::LoadingButton>)
        @extends gtk::Button, gtk::Widget,
        @implements gtk::Actionable, gtk::Buildable, gtk::ConstraintTarget;
}

impl LoadingButton {
    /// Runs `work` with the button loading, or does nothing (`None`) while
    /// an earlier run has not finished.
    pub async fn run<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        if self.loading() {
            return None;
        }
        self.set_loading(true);
        let out = work.await;
        self.set_loading(false);
        Some(out)
    }

    /// A form's submit step: runs `work` with the button loading, and shows
    /// a failure in the form's `error_label`. `None`: it failed, or an
    /// earlier run has not finished.
    pub async fn submit<T>(
        &self,
        error_label: &gtk::Label,
        work: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Option<T> {
        match self.run(work).await? {
            Ok(answer) => Some(answer),
            Err(e) => {
                show_error(error_label, Some(&user_message(&e)));
                None
            }
        }
    }
}

/// Shows `text` in a form's error label, or hides the label.
pub fn show_error(label: &gtk::Label, text: Option<&str>) {
    label.set_text(text.unwrap_or(""));
    label.set_visible(text.is_some());
}

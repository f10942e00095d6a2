//! The views: each widget is a `.rs` file with its `.ui` template beside it.

mod chat_row;
mod chat_view;
mod connect_page;
mod contact_dialog;
mod loading_button;
mod login_page;
mod main_view;
mod message_row;
mod nav;
mod new_chat_dialog;
mod preferences_window;
mod sidebar;
mod signup_page;
mod verify_page;
mod window;

pub use chat_row::ChatRow;
pub use chat_view::ChatView;
pub use connect_page::ConnectPage;
pub use contact_dialog::ContactDialog;
pub use login_page::LoginPage;
pub use main_view::MainView;
pub use message_row::MessageRow;
pub use new_chat_dialog::NewChatDialog;
pub use preferences_window::PreferencesWindow;
pub use sidebar::Sidebar;
pub use signup_page::SignupPage;
pub use verify_page::VerifyPage;
pub use window::FerrogramWindow;

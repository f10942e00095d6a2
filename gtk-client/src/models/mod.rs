//! The app's data: GObjects and `gio::ListModel`s that views bind to, and pure
//! functions (Markdown, time formatting). Nothing here creates a widget, so
//! everything can be tested without a display.

/// Defines property setters that return early when the value is unchanged
/// and notify otherwise (for `#[property(set = Self::set_x, explicit_notify)]`).
macro_rules! setters {
    ($($name:ident => $field:ident: $kind:ident<$ty:ty>;)*) => {
        $(setters!(@one $name, $field, $kind, $ty);)*
    };
    (@one $name:ident, $field:ident, Cell, $ty:ty) => {
        fn $name(&self, value: $ty) {
            if self.$field.get() == value {
                return;
            }
            self.$field.set(value);
            self.obj().notify(&stringify!($field).replace('_', "-"));
        }
    };
    (@one $name:ident, $field:ident, RefCell, $ty:ty) => {
        fn $name(&self, value: $ty) {
            if *self.$field.borrow() == value {
                return;
            }
            self.$field.replace(value);
            self.obj().notify(&stringify!($field).replace('_', "-"));
        }
    };
}
pub(crate) use setters;

mod account;
mod chat;
mod chat_list;
pub mod format;
pub mod markdown;
mod message;
mod message_list;
pub mod password;
mod user;

pub use account::{Account, ConnectionState};
pub use chat::Chat;
pub use chat_list::ChatList;
pub use message::{Message, MessageStatus, Trust};
pub use message_list::MessageList;
pub use user::User;

//! Compile-time checks of the client library's types: clients and sessions
//! are shared across tasks (GTK app, load generator) and their futures are
//! spawned on multi-threaded runtimes, so a lock held across an await would
//! break users. These only need to compile.

use ferrogram_client::proto::UpdateProfileRequest;
use ferrogram_client::{Client, ClientError, RegisterParams, Session};
use ferrogram_core::ids::UserId;

fn assert_send<T: Send>(_: &T) {}

fn assert_shared<T: Send + Sync>() {}

#[allow(dead_code, clippy::needless_pass_by_value)]
fn futures_are_send(client: Client, session: Session) {
    assert_send(&client.login("a@b.org", "pw", None));
    assert_send(&client.register(RegisterParams::new("a", "b", "c", "d")));
    assert_send(&client.resume("t"));
    assert_send(&session.me());
    assert_send(&session.update_profile(UpdateProfileRequest::default()));
    assert_send(&session.change_password("a", "b"));
    assert_send(&session.delete_account("a"));
    assert_send(&session.user_keys(UserId(1)));
    assert_send(&session.sessions());
}

#[test]
fn clients_sessions_and_errors_are_send_and_sync() {
    assert_shared::<Client>();
    assert_shared::<Session>();
    assert_shared::<ClientError>();
}

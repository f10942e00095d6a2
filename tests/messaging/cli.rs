//! ferrogram-cli's chat and message subcommands against a real server, run
//! in-process with scripted input (the password on the first stdin line).

use std::os::unix::fs::PermissionsExt;

use ferrogram_cli::{self as cli, exit, Io};
use ferrogram_client::{Client, ServerAddr};
use serde_json::Value;

use ferrogram_test_support::{identity, spawn_app, TestApp, TestUser};

/// One user's ferrogram-cli: its own config (and data) folder.
struct Cli {
    dir: tempfile::TempDir,
    server: String,
    password: String,
}

impl Cli {
    /// Registers `tag` with fixed identity `n` and the client's default key
    /// derivation (the CLI accepts no cheaper one), verifies and logs in.
    async fn user(app: &TestApp, tag: &str, n: usize) -> (Cli, TestUser) {
        let user = TestUser::new(tag);
        let client = Client::connect(ServerAddr::from(app.server.addr))
            .await
            .unwrap();
        client
            .register(user.params(identity(n)))
            .await
            .expect("register");
        let code = app.mail_to(&user.email).await.code().unwrap();
        client.verify_code(&user.email, &code).await.unwrap();
        let cli = Cli {
            dir: tempfile::tempdir().unwrap(),
            server: app.server.addr.to_string(),
            password: format!("{}\n", user.password),
        };
        let (status, out, err) = cli
            .run(&["login", "--email", &user.email], &cli.password)
            .await;
        assert_eq!(status, exit::OK, "{out} {err}");
        (cli, user)
    }

    async fn run(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let dir = self.dir.path().to_str().unwrap().to_owned();
        let mut full = vec![
            "ferrogram-cli",
            "--config-dir",
            &dir,
            "--server",
            &self.server,
        ];
        full.extend_from_slice(args);
        let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut io = Io {
            stdin: &mut input,
            stdout: &mut out,
            stderr: &mut err,
            interactive: false,
        };
        let status = cli::run(full, &mut io).await;
        (
            status,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    /// A command that must succeed, with `--json`; the password on stdin.
    async fn ok(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let (status, out, err) = self.run(&full, &self.password).await;
        assert_eq!(status, exit::OK, "{args:?}: {out} {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// `watch --json`: the message lines.
    async fn watch(&self, args: &[&str]) -> (i32, Vec<Value>, String) {
        let mut full = vec!["--json", "watch"];
        full.extend_from_slice(args);
        let (status, out, err) = self.run(&full, &self.password).await;
        let lines = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        (status, lines, err)
    }
}

#[tokio::test]
async fn two_users_chat_from_the_command_line() {
    let app = spawn_app().await;
    let (alice, alice_user) = Cli::user(&app, "clialice", 0).await;
    let (bob, bob_user) = Cli::user(&app, "clibob", 1).await;
    let at_bob = format!("@{}", bob_user.handle);
    let at_alice = format!("@{}", alice_user.handle);

    // The keys are kept sealed, privately, next to the session.
    let keys = alice.dir.path().join("keys.json");
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", keys.display());
    let kept = std::fs::read_to_string(&keys).unwrap();
    assert!(kept.contains("sealed_keys") && !kept.contains("PRIVATE KEY"));

    let chat = alice.ok(&["chat", "new", &at_bob]).await;
    let chat_id = chat["id"].as_i64().unwrap().to_string();
    let ack = alice
        .ok(&["send", &at_bob, "hello", "from", "the", "shell"])
        .await;
    assert_eq!(ack["chat_id"].as_i64().unwrap().to_string(), chat_id);

    // Bob was offline: watch shows what he missed, then stops at --count.
    let (status, lines, err) = bob
        .watch(&["--count", "1", "--timeout", "20", "--incoming"])
        .await;
    assert_eq!(status, exit::OK, "{err}");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["payload"]["text"], "hello from the shell");
    assert_eq!(lines[0]["sender_handle"], alice_user.handle.as_str());
    assert_eq!(lines[0]["verification"]["state"], "trusted");
    // Once per device: a second watch starts after it (the next message it
    // shows is a later one; a repeat would come first)...
    alice.ok(&["send", &at_bob, "marker"]).await;
    let (status, lines, err) = bob
        .watch(&["--count", "1", "--timeout", "20", "--incoming"])
        .await;
    assert_eq!(status, exit::OK, "{err}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["payload"]["text"], "marker");
    // ...and a watch that gets fewer messages than asked for says so.
    let (status, lines, _) = bob.watch(&["--count", "1", "--timeout", "1"]).await;
    assert_eq!(status, exit::FAILURE, "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let error = lines[0]["error"]["message"].as_str().unwrap();
    assert!(error.contains("only 0 of 1"), "{error}");

    bob.ok(&["send", &chat_id, "hi", "Alice"]).await;
    let history = alice.ok(&["history", &at_bob]).await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["payload"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hello from the shell", "marker", "hi Alice"]);
    let (status, human, _) = alice.run(&["history", &chat_id], &alice.password).await;
    assert_eq!(status, exit::OK);
    assert!(human.contains(&format!("{at_bob}: hi Alice")), "{human}");

    // Edit, delete, read.
    let seq = ack["seq"].as_i64().unwrap().to_string();
    alice
        .ok(&["edit", &chat_id, &seq, "hello,", "edited"])
        .await;
    let read = bob.ok(&["read", &chat_id]).await;
    assert!(read["read_seq"].as_i64().unwrap() >= 3);
    alice.ok(&["delete-message", &chat_id, &seq]).await;
    let history = bob.ok(&["history", &chat_id]).await;
    assert_eq!(history["messages"][0]["deleted"], true);

    // Safety numbers agree; verifying marks the key.
    let from_alice = alice.ok(&["safety-number", &at_bob]).await;
    let from_bob = bob.ok(&["safety-number", &at_alice]).await;
    assert_eq!(
        from_alice["contact"]["safety_number"],
        from_bob["contact"]["safety_number"]
    );
    assert_eq!(from_alice["contact"]["verified"], false);
    let verified = alice.ok(&["verify-key", &at_bob]).await;
    assert_eq!(verified["verified"], true);
    let (status, human, _) = alice.run(&["safety-number", &at_bob], "").await;
    assert_eq!(status, exit::OK);
    assert!(human.contains("status: verified"), "{human}");

    // A group, by title.
    let group = alice.ok(&["group", "new", "Shell people", &at_bob]).await;
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    alice
        .ok(&["group", "rename", "Shell people", "Renamed"])
        .await;
    alice.ok(&["send", "Renamed", "to", "the", "group"]).await;
    let (status, lines, err) = bob
        .watch(&["--chat", "Renamed", "--count", "1", "--timeout", "20"])
        .await;
    assert_eq!(status, exit::OK, "{err}");
    assert_eq!(lines[0]["payload"]["text"], "to the group");
    let chats = bob.ok(&["chats"]).await;
    assert_eq!(chats["chats"].as_array().unwrap().len(), 2);
    alice
        .ok(&["group", "role", "Renamed", &at_bob, "admin"])
        .await;
    alice.ok(&["group", "transfer", "Renamed", &at_bob]).await;
    alice.ok(&["group", "leave", "Renamed"]).await;
    let chats = alice.ok(&["chats"]).await;
    assert_eq!(chats["chats"].as_array().unwrap().len(), 1);

    // Consent: with "nobody", an add is an invitation Bob accepts.
    let me = bob.ok(&["profile", "--who-can-add-me", "nobody"]).await;
    assert_eq!(me["who_can_add_me"], "nobody");
    let invite = alice.ok(&["group", "new", "Invite only", &at_bob]).await;
    assert_eq!(invite["members"].as_array().unwrap().len(), 1);
    assert_eq!(invite["invited"].as_array().unwrap().len(), 1);
    let listed = bob.ok(&["group", "invitations"]).await;
    assert_eq!(listed["invitations"][0]["title"], "Invite only");
    let id = listed["invitations"][0]["chat_id"]
        .as_i64()
        .unwrap()
        .to_string();
    let joined = bob.ok(&["group", "accept", &id]).await;
    assert_eq!(joined["members"].as_array().unwrap().len(), 2);
    assert!(bob.ok(&["group", "invitations"]).await["invitations"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn message_commands_explain_what_is_wrong() {
    let app = spawn_app().await;
    let (alice, _) = Cli::user(&app, "clierr", 0).await;

    // A wrong password does not open the keys: bad credentials.
    let (status, _, err) = alice.run(&["send", "1", "x"], "not my password\n").await;
    assert_eq!(status, exit::AUTH, "{err}");
    assert!(err.contains("wrong password"), "{err}");
    // No such user, no such chat.
    let (status, _, err) = alice.run(&["chat", "new", "@nobody_here"], "").await;
    assert_eq!(status, exit::FAILURE);
    assert!(err.contains("user_not_found"), "{err}");
    let (status, out, _) = alice
        .run(&["--json", "send", "999999", "x"], &alice.password)
        .await;
    assert_eq!(status, exit::FAILURE);
    let error: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(error["error"]["code"], "chat_not_found");
    // Logged out: no session, no keys.
    assert_eq!(alice.run(&["logout"], "").await.0, exit::OK);
    assert!(!alice.dir.path().join("keys.json").exists());
    let (status, _, err) = alice.run(&["watch"], &alice.password).await;
    assert_eq!(status, exit::AUTH);
    assert!(err.contains("not logged in"), "{err}");
}

//! `ferrogram-cli` against a real server, run in-process with scripted input.

use ferrogram_cli::{self as cli, exit, Io};
use serde_json::Value;

use ferrogram_test_support::{spawn_app, TestApp};

struct Cli {
    dir: tempfile::TempDir,
    server: String,
}

impl Cli {
    fn new(app: &TestApp) -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
            server: app.server.addr.to_string(),
        }
    }

    /// Runs one command with `--server` and the test's config folder.
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
        run_raw(&full, stdin).await
    }

    /// Runs one command with `--json` and parses its output.
    async fn json(&self, args: &[&str], stdin: &str) -> (i32, Value) {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let (status, out, err) = self.run(&full, stdin).await;
        let value = serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("{args:?}: not JSON ({e}): {out:?} / {err:?}");
        });
        (status, value)
    }
}

async fn run_raw(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut io = Io {
        stdin: &mut input,
        stdout: &mut out,
        stderr: &mut err,
        interactive: false,
    };
    let status = cli::run(args.to_vec(), &mut io).await;
    (
        status,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test]
async fn account_life_cycle_from_the_command_line() {
    let app = spawn_app().await;
    let cli = Cli::new(&app);
    let email = "cli.user@example.org";
    let password = "cli password one\n";

    let (status, info) = cli.json(&["server"], "").await;
    assert_eq!(status, exit::OK, "{info}");
    assert_eq!(info["name"], "ferrogram");

    // Register generates real RSA keys here (the CLI has no shortcut).
    let (status, out, err) = cli
        .run(
            &[
                "register", "--email", email, "--handle", "cli_user", "--name", "Cli User",
            ],
            password,
        )
        .await;
    assert_eq!(status, exit::OK, "{out} {err}");
    assert!(out.contains("Registered @cli_user"), "{out}");
    let code = app.mail_to(email).await.code().unwrap();
    let (status, verified) = cli
        .json(&["verify", "--email", email, "--code", &code], "")
        .await;
    assert_eq!(
        (status, &verified["verified"]),
        (exit::OK, &Value::Bool(true))
    );

    let (status, login) = cli
        .json(&["login", "--email", email, "--device", "ci"], password)
        .await;
    assert_eq!(status, exit::OK, "{login}");
    assert_eq!(login["handle"], "cli_user");
    let session_file = cli.dir.path().join(cli::SESSION_FILE);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&session_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let (status, me) = cli.json(&["whoami"], "").await;
    assert_eq!(status, exit::OK, "{me}");
    assert_eq!(me["email"], email);
    assert_eq!(me["verified"], true);
    let (status, out, _) = cli.run(&["whoami"], "").await;
    assert_eq!(status, exit::OK);
    assert!(out.contains("@cli_user (Cli User)"), "{out}");

    // profile: only the given fields change; nothing given is a usage error;
    // a bad value gets a clear message.
    let (status, me) = cli
        .json(
            &[
                "profile",
                "--name",
                "Cli Person",
                "--bio",
                "from a terminal",
            ],
            "",
        )
        .await;
    assert_eq!(status, exit::OK, "{me}");
    assert_eq!(
        (&me["display_name"], &me["bio"], &me["handle"]),
        (
            &Value::from("Cli Person"),
            &Value::from("from a terminal"),
            &Value::from("cli_user")
        )
    );
    let (status, out, _) = cli.run(&["whoami"], "").await;
    assert_eq!(status, exit::OK);
    assert!(out.contains("@cli_user (Cli Person)"), "{out}");
    let (status, _, err) = cli.run(&["profile"], "").await;
    assert_eq!(status, exit::USAGE, "{err}");
    let (status, _, err) = cli.run(&["profile", "--handle", "x"], "").await;
    assert_ne!(status, exit::OK, "{err}");
    assert!(err.contains("handle must be 3 to 32 characters"), "{err}");

    // A second log-in elsewhere (the library), listed and then revoked.
    let other = app
        .client
        .login(email, password.trim(), Some("other"))
        .await
        .unwrap();
    let (_, sessions) = cli.json(&["sessions"], "").await;
    let list = sessions["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{sessions}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let (status, revoked) = cli.json(&["sessions", "revoke-others"], "").await;
    assert_eq!((status, &revoked["revoked"]), (exit::OK, &Value::from(1)));
    assert!(other.me().await.unwrap_err().is_unauthorized());

    // Wrong password: exit status 5.
    let (status, _, err) = cli
        .run(&["login", "--email", email], "wrong password\n")
        .await;
    assert_eq!(status, exit::AUTH, "{err}");
    assert!(err.contains("invalid_credentials"), "{err}");

    // passwd: old, then new; the stored session is replaced and still works.
    let (status, changed) = cli
        .json(&["passwd"], "cli password one\ncli password two\n")
        .await;
    assert_eq!(status, exit::OK, "{changed}");
    assert_eq!(changed["revoked"], 1, "the session stored before");
    let (status, _) = cli.json(&["whoami"], "").await;
    assert_eq!(status, exit::OK);
    let (status, _, _) = cli.run(&["login", "--email", email], password).await;
    assert_eq!(status, exit::AUTH, "the old password no longer works");
    let (status, _, _) = cli
        .run(&["login", "--email", email], "cli password two\n")
        .await;
    assert_eq!(status, exit::OK);

    // Log out, then whoami needs a new log-in.
    let (status, out, _) = cli.run(&["logout"], "").await;
    assert_eq!(status, exit::OK);
    assert!(out.contains("Logged out"), "{out}");
    assert!(!session_file.exists());
    let (status, _, err) = cli.run(&["whoami"], "").await;
    assert_eq!(status, exit::AUTH, "{err}");

    // Delete needs --yes without a terminal, then the password.
    let (status, _, _) = cli
        .run(&["login", "--email", email], "cli password two\n")
        .await;
    assert_eq!(status, exit::OK);
    let (status, _, err) = cli.run(&["delete"], "cli password two\n").await;
    assert_eq!(status, exit::FAILURE);
    assert!(err.contains("--yes"), "{err}");
    let (status, deleted) = cli.json(&["delete", "--yes"], "cli password two\n").await;
    assert_eq!(
        (status, &deleted["deleted"]),
        (exit::OK, &Value::Bool(true))
    );
    // The account is gone: the pre-login answer is now a fake with the test
    // server's cheap parameters, which the CLI (no test override) refuses.
    let (status, _, err) = cli
        .run(&["login", "--email", email], "cli password two\n")
        .await;
    assert_eq!(status, exit::FAILURE, "{err}");
    assert!(err.contains("no account there"), "{err}");
}

#[tokio::test]
async fn cli_toml_names_the_server_and_bad_servers_are_clear() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap().to_owned();
    std::fs::write(
        dir.path().join(cli::CONFIG_FILE),
        format!("server = \"{}\"\n", app.server.addr),
    )
    .unwrap();
    let (status, out, err) =
        run_raw(&["ferrogram-cli", "--config-dir", &dir_arg, "server"], "").await;
    assert_eq!(status, exit::OK, "{err}");
    assert!(
        out.contains("ferrogram") && out.contains("registration: open"),
        "{out}"
    );

    // Nothing listens on port 9 (discard) on loopback.
    let (status, _, err) = run_raw(
        &[
            "ferrogram-cli",
            "--config-dir",
            &dir_arg,
            "--server",
            "http://127.0.0.1:9",
            "server",
        ],
        "",
    )
    .await;
    assert_eq!(status, exit::UNREACHABLE, "{err}");
    assert!(
        err.contains("cannot reach the server at http://127.0.0.1:9"),
        "{err}"
    );

    // Some other web server.
    let other = not_ferrogram_server().await;
    let (status, _, err) = run_raw(
        &[
            "ferrogram-cli",
            "--config-dir",
            &dir_arg,
            "--server",
            &other,
            "server",
        ],
        "",
    )
    .await;
    assert_eq!(status, exit::NOT_FERROGRAM, "{err}");
    assert!(err.contains("is not a Ferrogram server"), "{err}");

    std::fs::write(dir.path().join(cli::CONFIG_FILE), "servr = \"x\"\n").unwrap();
    let (status, _, err) =
        run_raw(&["ferrogram-cli", "--config-dir", &dir_arg, "server"], "").await;
    assert_eq!(status, exit::FAILURE);
    assert!(err.contains("unknown key `servr`"), "{err}");
}

/// A web server that answers every request with a small HTML 404 page.
async fn not_ferrogram_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let body = "<html><body>Not here</body></html>";
            let answer = format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    addr.to_string()
}

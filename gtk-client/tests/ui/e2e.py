#!/usr/bin/python3
"""End-to-end UI test of the Ferrogram GNOME app, driven through its
accessibility tree (AT-SPI, dogtail) against a real server.

Run it through scripts/test-ui, which provides what it needs: an X server
(Xvfb), a D-Bus session bus (on which the AT-SPI bus is activated on demand,
so GTK 4 publishes its widgets) and the built binaries.

What works with GTK 4.8's AT-SPI here (and what this test relies on):
- widgets are found by role and accessible name; names come from the .ui
  `<accessibility>` labels or the widget's own text;
- buttons (toggle buttons too) and menu items have a "click" action;
  check boxes have none (New Chat's "Add to Group" is a toggle button);
- entries take text through EditableText (reading it back is not supported);
- the "showing" state is never set, so searches include hidden stack pages:
  forms are therefore found inside the page of their heading;
- list rows (GtkListView, GtkListBox) and emoji chooser cells have no
  accessible action, and synthetic XTest clicks do not reach GTK 4 under
  Xvfb: chats are opened through the people search's "Message" button.

Messages are reached through their "Message menu" button (the accessible
twin of right click and long press).

The flow: a notification server (notification_server.py) runs on the
session bus. Ada's Connect screen tells a closed port from a web server that
is not Ferrogram; Ada connects, signs up (the resend button counts its
cool-down down), verifies with the code from the server's outbox mail, logs
in, checks her settings (verified email, this session, no keyring) and
switches to the dark style. Then gnome-keyring starts (login keyring
unlocked with a known password) and Bob does the same (his app starts dark,
his session goes to the keyring). Ada finds Bob, opens a chat and sends
Markdown with an emoji; her tick shows "Delivered" as soon as Bob's app
stored it, and "Read" once Bob read it with ferrogram-cli (another device);
Bob sees it rendered and replies while Ada sees him typing. Ada renames
herself with ferrogram-cli and Bob's app shows the new name at once; Bob
renames himself in the settings and Ada's app shows it at once. Both see
the same safety number and Ada marks Bob verified. The server stops (both
apps show the lost connection) and starts again on the same port (both
reconnect by themselves, a message goes through); while it was down its
copy of Bob's reply was tampered with, and Ada on a new device sees that
message flagged as failed verification, never its text. Ada logs out her
other sessions from the settings (the command-line one stops working); the
emoji chooser opens; an emoji-only message arrives. Message menus: Ada
edits a message (Bob sees the new text and "edited"), copies it (the
clipboard holds the Markdown source), Bob replies to one (Ada sees the
quote), Ada deletes hers for everyone (gone on both sides). Ada creates a
group with Bob; while another window has the focus (desktop_helper.py),
Ada's group message raises a notification in Bob's app; clicking it
(ActionInvoked) opens the group there, with Ada's name on the message and
"2 members". Ada sends 55 more messages; Bob quits, starts again straight
into the main window (keyring), opens the chat, and "Load Earlier
Messages" brings its first message; Bob logs out and his keyring entry is
gone. Ada changes her password in the settings (a mismatch is refused
first) and deletes her account with the new one; an app started with
LANGUAGE=de greets in German.
Screenshots go to target/ui-screenshots/.
"""

import base64
import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

from dogtail.config import config

config.checkForA11y = False
config.searchShowingOnly = False
config.defaultDelay = 0.1
config.searchCutoffCount = 3
config.logDebugToFile = False

from dogtail import tree  # noqa: E402  (config first)
from dogtail.predicate import GenericPredicate  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SERVER = os.path.join(TARGET, "debug", "ferrogram-server")
APP = os.path.join(TARGET, "debug", "ferrogram")
CLI = os.path.join(TARGET, "debug", "ferrogram-cli")
SHOTS = os.path.join(TARGET, "ui-screenshots")
PASSWORD = "correct horse battery staple"

failures = []


def log(text):
    print(f"[e2e] {text}", flush=True)


def wait_for(what, find, timeout=60.0):
    """Polls `find` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            found = find()
            if found:
                return found
        except Exception as e:  # the tree changes under us while we look
            last_error = e
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} ({last_error})")


def find(node, name=None, role=None):
    """The first descendant with this accessible name and role, or None."""
    return node.findChild(
        GenericPredicate(name=name, roleName=role), retry=False, requireResult=False
    )


def find_all(node, name=None, role=None):
    return node.findChildren(GenericPredicate(name=name, roleName=role))


def click(node):
    """Activates a button-like node (GTK names the action "click" on buttons,
    something else on check buttons)."""
    actions = list(node.actions.keys())
    node.doActionNamed("click" if "click" in actions else actions[0])


def set_text(node, text):
    node.text = text


def screenshot(name):
    os.makedirs(SHOTS, exist_ok=True)
    path = os.path.join(SHOTS, name)
    subprocess.run(["import", "-window", "root", path], check=True)
    log(f"screenshot {path}")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The running server (restarted by `lose_connection`), for the clean-up.
SERVER_STATE = {}


def start_server(data_dir, port=None):
    port = port or free_port()
    env = dict(
        os.environ,
        FERROGRAM__SERVER__HOST="127.0.0.1",
        FERROGRAM__SERVER__PORT=str(port),
        FERROGRAM__DATA_DIR=data_dir,
        FERROGRAM__MAIL__TRANSPORT="outbox",
    )
    out = open(os.path.join(data_dir, "server.log"), "w")
    proc = subprocess.Popen(
        [SERVER, "--config", os.path.join(ROOT, "config.yaml")],
        env=env, stdout=out, stderr=subprocess.STDOUT, cwd=data_dir,
    )

    def listening():
        with open(os.path.join(data_dir, "server.log")) as f:
            return "listening on" in f.read()

    wait_for("the server to start", listening, 60)
    SERVER_STATE.update(proc=proc, port=port, data=data_dir)
    return proc, port


def stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


OFFLINE = r"^(Connecting\u2026|Not connected\. Retrying automatically\u2026)$"


def tamper_newest_message(data_dir, handle):
    """Plays a malicious server: flips one byte of the newest stored message
    of `handle`, in the server's database. Messages are stored as a binary
    envelope whose last field is the 384-byte signature; rows from before
    that were JSON, where the ciphertext is changed instead."""
    db = sqlite3.connect(os.path.join(data_dir, "ferrogram.db"))
    try:
        (user,) = db.execute("SELECT id FROM users WHERE handle = ?", (handle,)).fetchone()
        rowid, body = db.execute(
            "SELECT rowid, body FROM chat_events WHERE sender = ? AND kind = 'message' "
            "ORDER BY seq DESC LIMIT 1", (user,)).fetchone()
        if isinstance(body, bytes):
            raw = bytearray(body)
            raw[-100] ^= 0x01
            db.execute("UPDATE chat_events SET body = ? WHERE rowid = ?", (bytes(raw), rowid))
        else:
            event = json.loads(body)
            sealed = event["envelope"]["body"]
            urlsafe = "-" in sealed or "_" in sealed
            pad = "=" * (-len(sealed) % 4)
            raw = bytearray((base64.urlsafe_b64decode if urlsafe else base64.b64decode)(sealed + pad))
            raw[len(raw) // 2] ^= 0x01
            encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(bytes(raw)).decode()
            event["envelope"]["body"] = encoded if sealed.endswith("=") else encoded.rstrip("=")
            db.execute("UPDATE chat_events SET body = ? WHERE rowid = ?", (json.dumps(event), rowid))
        db.commit()
    finally:
        db.close()
    log(f"the server's copy of {handle}'s newest message was tampered with")


def lose_connection(instances, sender, receiver):
    """The server goes away: every app says so in its banner; it comes back
    on the same port: the apps reconnect by themselves and messages flow.
    While it is down, its copy of Bob's newest message is tampered with."""
    stop_server(SERVER_STATE["proc"])
    for inst in instances:
        inst.wait_label_matching(OFFLINE, 60)
    log("the apps show the lost connection")
    screenshot("reconnecting.png")
    tamper_newest_message(SERVER_STATE["data"], "bob")
    start_server(SERVER_STATE["data"], SERVER_STATE["port"])
    rx = re.compile(OFFLINE)
    for inst in instances:
        wait_for(f"{inst.label}: the banner to go",
                 lambda: not any(n.name and rx.search(n.name) for n in find_all(inst.app, role="label")),
                 90)
    text = "back online"
    set_text(wait_for("the composer", lambda: find(sender.app, "Message", "text")), text)
    click(wait_for("the send button", lambda: find(sender.app, "Send", "push button")))
    receiver.wait_label(text, 60)
    log("the apps reconnected by themselves and a message went through")


def newest_code(outbox, address):
    """The 6-digit code of the newest mail to `address` in the outbox."""
    best = None
    for root, _, files in os.walk(outbox):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                mail = email.message_from_binary_file(f, policy=email.policy.default)
            if address not in str(mail.get("To", "")):
                continue
            text = ""
            for part in mail.walk():
                if part.get_content_type() == "text/plain":
                    text += part.get_content()
            match = re.search(r"\b(\d{6})\b", text)
            if match and (best is None or os.path.getmtime(path) >= best[0]):
                best = (os.path.getmtime(path), match.group(1))
    return best[1] if best else None


class Instance:
    """One running app with its own settings and data folders (`reuse`: the
    folders of an earlier run with this label: the app is started again)."""

    def __init__(self, label, base, color_scheme=None, reuse=False, extra_env=None):
        self.label = label
        self.home = os.path.join(base, label)
        os.makedirs(self.home, exist_ok=reuse)
        if color_scheme:
            # The settings file as the Appearance page writes it.
            settings = os.path.join(self.home, "config", "ferrogram")
            os.makedirs(settings)
            with open(os.path.join(settings, "gtk.json"), "w") as f:
                f.write('{"color_scheme": "%s"}' % color_scheme)
        env = dict(
            os.environ,
            XDG_CONFIG_HOME=os.path.join(self.home, "config"),
            XDG_DATA_HOME=os.path.join(self.home, "data"),
            XDG_CACHE_HOME=os.path.join(self.home, "cache"),
            FERROGRAM_LOG="info",
            FERROGRAM_NON_UNIQUE="1",
        )
        env.update(extra_env or {})
        # No desktop: no GNOME keyring either, which the app must say.
        env.pop("GNOME_KEYRING_CONTROL", None)
        self.log = open(os.path.join(self.home, "app.log"), "a")
        self.proc = subprocess.Popen([APP], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.app = wait_for(f"{label} on the accessibility bus", self._find_app, 120)

    def _find_app(self):
        for app in tree.root.applications():
            try:
                if app.get_process_id() == self.proc.pid:
                    return app
            except Exception:
                continue
        return None

    def page(self, heading):
        """The column of the screen titled `heading` (its form fields)."""
        def heading_label():
            # Buttons carry labels with the same text: take the heading.
            for node in find_all(self.app, heading, "label"):
                if node.parent.roleName != "push button":
                    return node
            return None

        return wait_for(f"the {heading!r} screen", heading_label).parent

    def wait_label(self, text, timeout=60.0):
        return wait_for(f"{self.label}: label {text!r}", lambda: find(self.app, text, "label"), timeout)

    def wait_label_matching(self, pattern, timeout=60.0):
        rx = re.compile(pattern)

        def look():
            for node in find_all(self.app, role="label"):
                if node.name and rx.search(node.name):
                    return node
            return None

        return wait_for(f"{self.label}: a label matching {pattern!r}", look, timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def connect_errors(inst):
    """The Connect screen says clearly when nothing answers at the address,
    and when something answers that is not a Ferrogram server."""
    page = inst.page("Choose a Server")
    closed = free_port()
    set_text(find(page, "Host", "text"), "127.0.0.1")
    set_text(find(page, "Port", "text"), str(closed))
    click(find(page, "Connect", "push button"))
    inst.wait_label_matching(rf"^Cannot reach .*127\.0\.0\.1:{closed}.*Check the address", 60)
    other = subprocess.Popen(
        ["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tempfile.gettempdir(),
    )
    try:
        line = wait_for("the other web server", other.stdout.readline, 30)
        other_port = re.search(r"port (\d+)", line).group(1)
        set_text(find(page, "Port", "text"), other_port)
        click(find(page, "Connect", "push button"))
        inst.wait_label_matching(rf"127\.0\.0\.1:{other_port} answered, but it is not a Ferrogram server", 60)
    finally:
        other.kill()
        other.wait()
    log(f"{inst.label}: the Connect screen tells an unreachable address and a foreign server apart")


def connect(inst, port):
    page = inst.page("Choose a Server")
    set_text(find(page, "Host", "text"), "127.0.0.1")
    set_text(find(page, "Port", "text"), str(port))
    click(find(page, "Connect", "push button"))
    inst.wait_label_matching(rf"on http://127\.0\.0\.1:{port}")
    log(f"{inst.label}: connected to the server")


def sign_up(inst, outbox, who):
    login = inst.page("Log In")
    click(find(login, "Create an Account", "push button"))
    form = inst.page("Create an Account")
    set_text(find(form, "Email", None), who["email"])
    set_text(find(form, "Username", None), who["handle"])
    set_text(find(form, "Display name", None), who["name"])
    set_text(find(form, "Password", None), PASSWORD)
    set_text(find(form, "Repeat password", None), PASSWORD)
    inst.wait_label("Strong.")
    click(find(form, "Create Account", "push button"))
    # Generating two RSA-3072 keys and Argon2id take a while on a busy machine.
    inst.wait_label_matching(rf"We sent a 6-digit code to {re.escape(who['email'])}", 180)
    log(f"{inst.label}: account created, verification mail requested")
    check_resend_cooldown(inst)
    code = wait_for("the verification mail", lambda: newest_code(outbox, who["email"]), 60)
    verify = inst.page("Verify Your Email")
    set_text(find(verify, "Verification code", None), code)
    click(find(verify, "Verify", "push button"))
    inst.wait_label("Your email address is verified. Log in to start.")
    log(f"{inst.label}: email verified with the code from the outbox")


def check_resend_cooldown(inst):
    """The Verify screen's resend button counts its cool-down down."""
    rx = re.compile(r"^Send a new code in (\d+) seconds?$")

    def seconds_left():
        for node in find_all(inst.app, role="push button"):
            match = node.name and rx.match(node.name)
            if match:
                return int(match.group(1))
        return None

    first = wait_for(f"{inst.label}: the resend cool-down", seconds_left, 30)
    later = wait_for(f"{inst.label}: the cool-down counting down",
                     lambda: (seconds_left() or first) < first, 10)
    log(f"{inst.label}: resend waits out its cool-down ({first} s, counting down)")
    return later


def log_in(inst, who):
    form = inst.page("Log In")
    set_text(find(form, "Email", None), who["email"])
    set_text(find(form, "Password", None), PASSWORD)
    click(find(form, "Log In", "push button"))
    inst.wait_label("Select a Chat", 120)
    log(f"{inst.label}: logged in, main window shown")


def open_preferences(inst):
    # A GtkMenuButton's action sits on the toggle button inside it.
    def menu_toggle():
        for node in find_all(inst.app, "Main Menu", "push button"):
            if "click" in node.actions:
                return node
        return None

    click(wait_for("the main menu", menu_toggle))
    item = wait_for("the Preferences item", lambda: find(inst.app, "Preferences", "menu item")
                    or find(inst.app, "_Preferences", "menu item"))
    click(item)
    return wait_for("the preferences window",
                    lambda: find(inst.app, "Profile", "label") and find(inst.app, "Active Sessions", "label"))


def check_settings(inst, who):
    open_preferences(inst)
    inst.wait_label("Verified")
    inst.wait_label(who["email"])
    inst.wait_label("This device")
    inst.wait_label("No keyring available: you are logged out when the app closes.")
    log(f"{inst.label}: settings show the verified email, this session and the keyring state")


def clickable(node, name):
    """A node named `name` that can be clicked, or a clickable one inside it."""
    for match in find_all(node, name):
        if match.actions:
            return match
        for inner in match.findChildren(lambda n: bool(n.actions)):
            return inner
    return None


def set_style(inst, name):
    # A button acts only once shown (realized): open the Appearance page first.
    def tab():
        for node in find_all(inst.app, "Appearance", "page tab"):
            if "click" in node.actions:
                return node
        return None

    click(wait_for("the Appearance tab", tab))
    time.sleep(0.5)

    def toggle():
        for node in find_all(inst.app, name, "push button"):
            if node.actions:
                return node
        return None

    try:
        click(wait_for(f"the {name} style button", toggle, 10))
    except AssertionError:
        for n in find_all(inst.app, name):
            log(f"candidate: {n.roleName} {n.name!r} {list(n.actions.keys())}")
        raise


def close_window(inst, title_node_name):
    frame = wait_for("the window", lambda: find(inst.app, title_node_name, "frame"))
    close = find(frame, "Close", "push button")
    click(close)


def main():
    for path in (SERVER, APP, CLI):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: build first (scripts/test-ui does)")
    base = tempfile.mkdtemp(prefix="ferrogram-ui-")
    SERVER_STATE["base"] = base
    data = os.path.join(base, "server")
    os.makedirs(data)
    server, port = start_server(data)
    notifications = Notifications(base)
    outbox = os.path.join(data, "outbox")
    log(f"server on port {port}, data in {data}")
    ada = {"email": "ada@example.org", "handle": "ada", "name": "Ada Lovelace"}
    bob = {"email": "bob@example.org", "handle": "bob", "name": "Bob Babbage"}
    instances = []
    try:
        a = Instance("ada", base)
        instances.append(a)
        connect_errors(a)
        connect(a, port)
        sign_up(a, outbox, ada)
        log_in(a, ada)
        a.wait_label("No Chats Yet")
        screenshot("main-light.png")

        check_settings(a, ada)
        # From here on a keyring runs (Ada's app, started without one, said so).
        start_keyring(base)
        set_style(a, "Dark")
        time.sleep(1)
        screenshot("preferences-dark.png")
        set_style(a, "Light")
        close_window(a, "Preferences")

        # Bob's app starts in the dark style (as chosen in Appearance).
        b = Instance("bob", base, color_scheme="dark")
        instances.append(b)
        connect(b, port)
        sign_up(b, outbox, bob)
        log_in(b, bob)
        b.wait_label("No Chats Yet")
        screenshot("main-dark.png")

        # Ada looks Bob up by his username.
        click(wait_for("the new chat button", lambda: find(a.app, "New Chat", "push button")))
        search = wait_for("the people search", lambda: find(a.app, "Search people", None))
        set_text(search, "bob")
        a.wait_label(bob["name"])
        log("ada: found bob by his username")
        run_messaging(a, b, ada, bob, search, port)
        message_menus(a, b, ada)
        group_and_notification(a, b, ada, bob, notifications)
        b = restart_with_keyring(b, base, a, bob)
        instances.append(b)
        load_earlier(b, ada)
        log_out_clears_keyring(b, bob, port)
        # Bob's window covers Ada's (no window manager): close his app to show hers.
        b.stop()
        time.sleep(1)
        screenshot("chat-light.png")
        new_password = "a longer passphrase for the test"
        change_password(a, PASSWORD, new_password)
        delete_account(a, new_password)
        german(base)
    except Exception as e:
        failures.append(str(e))
        log(f"FAILED: {e}")
        try:
            screenshot("failure.png")
        except Exception:
            pass
    finally:
        for inst in instances:
            inst.stop()
        notifications.stop()
        stop_server(SERVER_STATE.get("proc", server))
        if failures:
            for inst in instances:
                log(f"--- {inst.label} app log ---")
                with open(os.path.join(inst.home, "app.log")) as f:
                    sys.stdout.write(f.read()[-4000:])
            log("--- notifications ---")
            sys.stdout.write(notifications.read_text())
        else:
            shutil.rmtree(base, ignore_errors=True)
    if failures:
        print(f"0 passed, {len(failures)} failed")
        sys.exit(1)
    print("1 passed, 0 failed")


def activatable(node, name):
    """A node named `name` (or containing one) that can be activated."""
    for match in find_all(node, name):
        for candidate in [match] + match.findChildren(lambda n: True):
            acts = list(candidate.actions.keys())
            if "click" in acts or "activate" in acts:
                return candidate
        parent = match.parent
        for _ in range(4):
            if parent is None:
                break
            acts = list(parent.actions.keys())
            if "click" in acts or "activate" in acts:
                return parent
            parent = parent.parent
    return None


def activate(node):
    acts = list(node.actions.keys())
    node.doActionNamed("click" if "click" in acts else "activate")


def button_with_label(node, text):
    """A button whose name is `text`, or whose label child says it."""
    named = clickable_named(node, text)
    if named is not None and named.roleName == "push button":
        return named
    for label in find_all(node, text, "label"):
        if label.parent.roleName == "push button" and "click" in label.parent.actions:
            return label.parent
    return None


def message_button(inst):
    """The "Message" button of the (first) person found."""
    for node in find_all(inst.app, "Message", "label"):
        if node.parent.roleName == "push button" and "click" in node.parent.actions:
            return node.parent
    return None


def describe(inst, name):
    for n in find_all(inst.app, name):
        chain = []
        p = n
        for _ in range(5):
            if p is None:
                break
            chain.append(f"{p.roleName}:{list(p.actions.keys())[:3]}")
            p = p.parent
        log(f"  {n.roleName} {n.name!r} <- {' <- '.join(chain[1:])}")


GRINNING = "\U0001F600"


def clickable_named(app, name):
    """A node named `name` with a click action (a menu button's inner button)."""
    for node in find_all(app, name):
        if "click" in node.actions:
            return node
    return None


def safety_number(inst):
    """Opens the chat's safety number dialog and reads the number."""
    click(wait_for("the safety number button", lambda: find(inst.app, "Safety Number", "push button")))
    rx = re.compile(r"^\d{5}(\s+\d{5}){11}$")

    def number():
        for node in find_all(inst.app, role="label"):
            if node.name and rx.match(node.name.strip()):
                return node
        return None

    return " ".join(wait_for(f"{inst.label}: the safety number", number, 60).name.split())


def run_cli(who, port, *args, stdin=""):
    """Runs ferrogram-cli as `who` (another device of theirs)."""
    home = os.path.join(SERVER_STATE["base"], f"cli-{who['handle']}")
    return subprocess.run(
        [CLI, "--server", f"127.0.0.1:{port}", "--config-dir", home, *args],
        input=stdin, capture_output=True, text=True, timeout=120,
    )


def cli(who, port, *args, stdin=""):
    """ferrogram-cli as `who`, which must succeed; answers its output."""
    done = run_cli(who, port, *args, stdin=stdin)
    if done.returncode != 0:
        raise AssertionError(f"ferrogram-cli {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def rename_elsewhere(who, port, viewer, new_name):
    """`who` changes their display name on another device (the command-line
    client); `viewer`'s app shows the new name at once (profile_changed)."""
    cli(who, port, "login", "--email", who["email"], "--device", "cli", stdin=PASSWORD + "\n")
    cli(who, port, "profile", "--name", new_name)
    who["name"] = new_name
    viewer.wait_label(new_name, 60)
    log(f"{viewer.label}: shows {who['handle']}'s new name {new_name!r} without reloading")


def revoke_other_sessions(inst, who, port):
    """Settings, Sessions: the list shows the other devices (the command-line
    client among them); "Log Out Others" ends them on the server."""
    open_preferences(inst)

    def tab():
        for node in find_all(inst.app, "Sessions", "page tab"):
            if "click" in node.actions:
                return node
        return None

    click(wait_for("the Sessions tab", tab))
    inst.wait_label("cli")
    inst.wait_label("This device")
    click(wait_for("Log Out Others", lambda: clickable_named(inst.app, "Log Out Others")))
    inst.wait_label_matching(r"^[2-9] other sessions logged out\.$", 30)
    done = run_cli(who, port, "whoami")
    if done.returncode != 5:
        raise AssertionError(f"the command-line session still works (exit {done.returncode})")
    wait_for("the other sessions to leave the list", lambda: not find(inst.app, "cli", "label"), 30)
    close_window(inst, "Preferences")
    log(f"{inst.label}: logged out the other sessions from the settings (the CLI's ended)")


def run_messaging(a, b, ada, bob, search, port):
    """Ada starts a chat with Bob and sends Markdown with an emoji; Bob sees
    it rendered, and replies; Ada sees the reply."""
    # The row's "Message" button: GTK 4.8 gives list rows no accessible
    # action, and synthetic (XTest) clicks do not reach GTK 4 under Xvfb here.
    try:
        click(wait_for("the Message button", lambda: message_button(a), 20))
    except AssertionError:
        describe(a, "Message")
        raise
    # The chat opens: its header names Bob, the composer takes the text.
    composer = wait_for("the composer", lambda: find(a.app, "Message", "text"))
    set_text(composer, "Hello **Bob**, see `code` \U0001F44B")
    click(wait_for("the send button", lambda: find(a.app, "Send", "push button")))
    a.wait_label_matching(r"^Hello Bob, see code \U0001F44B$", 60)
    log("ada: message sent and shown rendered in her chat")
    # Bob's app runs but his chat is not open: his device stores the message
    # and acknowledges it by itself, so Ada's tick turns "Delivered" (each
    # tick state is its own label with its own accessible name; hidden ones
    # are not on the accessibility bus).
    wait_for("ada's delivered tick", lambda: find(a.app, "Delivered", "label"), 60)
    if find(a.app, "Read", "label"):
        raise AssertionError("ada's message shows read before bob opened the chat")
    if find(a.app, "Not sent", "label"):
        raise AssertionError("hidden tick labels are on the bus: the tick checks prove nothing")
    log("ada: her message shows delivered (bob has not opened it)")
    # Bob reads it on another device (the command-line client): Ada's tick
    # turns "Read".
    cli(bob, port, "login", "--email", bob["email"], "--device", "cli", stdin=PASSWORD + "\n")
    chats = json.loads(cli(bob, port, "--json", "chats"))["chats"]
    cli(bob, port, "read", str(chats[0]["id"]))
    wait_for("ada's read tick", lambda: find(a.app, "Read", "label"), 60)
    if find(a.app, "Delivered", "label"):
        raise AssertionError("ada's message still shows delivered next to read")
    log("ada: her message shows read once bob read it on another device")

    # Bob's chat list gets the new chat with its preview.
    b.wait_label(ada["name"], 60)
    # Bob opens it the same way: New Chat, Ada, Message (the existing chat).
    click(wait_for("bob's new chat button", lambda: find(b.app, "New Chat", "push button")))
    set_text(wait_for("bob's people search", lambda: find(b.app, "Search people", None)), "ada")
    b.wait_label("@ada")
    click(wait_for("bob's Message button", lambda: message_button(b)))
    b.wait_label_matching(r"^Hello Bob, see code \U0001F44B$", 60)
    log("bob: sees ada's message rendered (no Markdown marks left)")
    screenshot("chat-received-dark.png")

    composer = wait_for("bob's composer", lambda: find(b.app, "Message", "text"))
    set_text(composer, "_Hi_ Ada! \u2764\ufe0f")
    # Bob is typing: Ada's chat header and chat list say so.
    a.wait_label("typing\u2026", 20)
    log("ada: sees bob typing")
    click(wait_for("bob's send button", lambda: find(b.app, "Send", "push button")))
    a.wait_label_matching(r"^Hi Ada! \u2764\ufe0f$", 60)
    log("ada: received bob's reply")
    rename_elsewhere(ada, port, b, "Ada King")
    rename_in_settings(b, bob, "Bob the Builder", a)

    # Both see the same safety number; Ada marks Bob verified.
    number_a = safety_number(a)
    number_b = safety_number(b)
    if number_a != number_b:
        raise AssertionError(f"safety numbers differ: {number_a} / {number_b}")
    log(f"ada and bob see the same safety number ({number_a[:11]}...)")
    a.wait_label("Not verified yet.")
    click(wait_for("Mark as Verified", lambda: clickable_named(a.app, "Mark as Verified")))
    a.wait_label("You verified this contact.")
    log("ada: marked bob as verified")
    close_window(a, "Safety Number")
    close_window(b, "Safety Number")

    lose_connection([a, b], a, b)
    # Ada on a new device reads the history from the (now malicious) server:
    # the tampered reply is flagged and its text is not shown.
    laptop = Instance("ada-laptop", SERVER_STATE["base"])
    try:
        connect(laptop, port)
        log_in(laptop, ada)
        click(wait_for("the new chat button", lambda: find(laptop.app, "New Chat", "push button")))
        set_text(wait_for("the people search", lambda: find(laptop.app, "Search people", None)), "bob")
        click(wait_for("the Message button", lambda: message_button(laptop), 60))
        laptop.wait_label_matching(r"^This message failed verification", 60)
        laptop.wait_label_matching(r"^Hello Bob, see code", 60)
        if find(laptop.app, "Hi Ada! \u2764\ufe0f", "label"):
            raise AssertionError("the tampered message's text is shown")
        screenshot("tampered-message.png")
        log("ada-laptop: the tampered message is flagged, not shown; the intact one reads normally")
    finally:
        laptop.stop()
    revoke_other_sessions(a, ada, port)

    # The emoji button opens GTK's emoji chooser. (Its emoji are flow box
    # children without an accessible action in GTK 4.8, so the test cannot
    # pick one; the screenshot shows the chooser.)
    emoji_menu = wait_for("the emoji button", lambda: clickable_named(a.app, "Insert Emoji"))
    click(emoji_menu)
    time.sleep(1)
    screenshot("emoji-chooser.png")
    click(emoji_menu)

    # An emoji alone: Bob sees it, shown large.
    before = len(find_all(b.app, GRINNING, "label"))
    set_text(wait_for("the composer", lambda: find(a.app, "Message", "text")), GRINNING)
    click(wait_for("the send button", lambda: find(a.app, "Send", "push button")))
    wait_for("the emoji at bob's", lambda: len(find_all(b.app, GRINNING, "label")) > before, 60)
    log("bob: received an emoji-only message")
    screenshot("chat-dark.png")


def editable(inst, name):
    """The text field of the entry (or entry row) named `name`."""
    def look():
        for node in find_all(inst.app, name):
            if "EditableText" in node.get_interfaces():
                return node
            inner = node.findChild(lambda n: "EditableText" in n.get_interfaces(),
                                   retry=False, requireResult=False)
            if inner is not None:
                return inner
        return None

    return wait_for(f"{inst.label}: the {name!r} field", look, 30)


def rename_in_settings(inst, who, new_name, viewer):
    """Settings, Profile: a new display name, saved, reaches `viewer`'s app
    at once."""
    open_preferences(inst)
    set_text(editable(inst, "Display Name"), new_name)
    # The rows' own apply buttons appear only for text typed while the row
    # has the focus, which AT-SPI cannot give in GTK 4.8: the group's Save.
    click(wait_for("the profile's Save button", lambda: button_with_label(inst.app, "Save")))
    who["name"] = new_name
    inst.wait_label("Profile saved.", 30)
    viewer.wait_label(new_name, 60)
    close_window(inst, "Preferences")
    log(f"{inst.label}: renamed in the settings; {viewer.label} shows {new_name!r}")


def change_password(inst, old, new):
    """Settings, Change Password: two different new passwords are refused
    with a clear message; then the password changes (the keys are sealed
    again) and the app stays logged in."""
    open_preferences(inst)
    set_text(editable(inst, "Current Password"), old)
    set_text(editable(inst, "New Password"), new)
    set_text(editable(inst, "Repeat New Password"), new + "x")
    click(wait_for("Change Password", lambda: button_with_label(inst.app, "Change Password")))
    inst.wait_label("The two new passwords differ.", 30)
    set_text(editable(inst, "Repeat New Password"), new)
    click(wait_for("Change Password", lambda: button_with_label(inst.app, "Change Password")))
    inst.wait_label_matching(r"^Password changed\. \d+ other sessions? (was|were) logged out\.$", 120)
    close_window(inst, "Preferences")
    log(f"{inst.label}: changed the password from the settings")


def delete_account(inst, password=PASSWORD):
    """Settings, Delete Account: the confirmation names the consequence and
    takes the password; afterwards the app is back at Log In."""
    open_preferences(inst)
    click(wait_for("Delete Account…", lambda: clickable_named(inst.app, "Delete Account\u2026")))
    warning = inst.wait_label_matching(r"will be deleted from the server .* This cannot be undone")
    dialog = warning
    while dialog.parent is not None and dialog.roleName not in ("dialog", "alert", "frame"):
        dialog = dialog.parent
    entry = wait_for("the password field", lambda: dialog.findChild(
        lambda n: "text" in n.roleName and "EditableText" in n.get_interfaces(), retry=False, requireResult=False))
    set_text(entry, password)
    click(wait_for("the Delete Account response", lambda: button_with_label(inst.app, "Delete Account")))
    inst.wait_label("Your account was deleted.", 60)
    log(f"{inst.label}: account deleted from the settings, back at Log In")


HELPERS = os.path.dirname(os.path.abspath(__file__))
KEYRING_PASSWORD = "keyring test password"


class Notifications:
    """The notification server of this D-Bus session (notification_server.py)."""

    def __init__(self, base):
        self.record = os.path.join(base, "notifications.jsonl")
        open(self.record, "w").close()
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HELPERS, "notification_server.py"), self.record],
            stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise AssertionError("the notification server did not start")

    def all(self):
        import json
        with open(self.record) as f:
            return [json.loads(line) for line in f if line.strip()]

    def read_text(self):
        with open(self.record) as f:
            return f.read()

    def click(self, nid):
        """What a shell does when the notification is clicked."""
        import dbus
        bus = dbus.SessionBus()
        server = bus.get_object("org.freedesktop.Notifications", "/org/freedesktop/Notifications")
        server.Click(dbus.UInt32(nid), "default", dbus_interface="org.ferrogram.TestNotifications")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class FocusThief:
    """Another application's window on top, holding the focus."""

    def __init__(self):
        env = dict(os.environ, GTK_A11Y="none")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HELPERS, "desktop_helper.py"), "focus"],
            env=env, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        log(f"another window is shown ({line})")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def clipboard_text():
    env = dict(os.environ, GTK_A11Y="none")
    out = subprocess.run(
        ["/usr/bin/python3", os.path.join(HELPERS, "desktop_helper.py"), "clipboard"],
        env=env, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"reading the clipboard: {out.stderr.strip()}")
    return out.stdout


def start_keyring(base):
    """gnome-keyring-daemon's Secret Service on this session bus, its login
    keyring created and unlocked with a known password (as a desktop
    session does at log-in)."""
    home = os.path.join(base, "keyring-home")
    runtime = os.path.join(home, "run")
    os.makedirs(runtime, mode=0o700)
    env = dict(os.environ, HOME=home, XDG_DATA_HOME=os.path.join(home, "data"),
               XDG_RUNTIME_DIR=runtime)
    out = subprocess.run(
        # --replace: a daemon D-Bus activated earlier (without a usable keyring)
        # may hold the name.
        ["gnome-keyring-daemon", "--replace", "--unlock", "--components=secrets"],
        input=KEYRING_PASSWORD, env=env, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"gnome-keyring-daemon: {out.stderr.strip()}")
    wait_for("the keyring's default collection", default_collection, 20)
    log("keyring: gnome-keyring-daemon runs, login keyring unlocked")


def default_collection():
    import dbus
    try:
        service = dbus.SessionBus().get_object("org.freedesktop.secrets", "/org/freedesktop/secrets")
        path = service.ReadAlias("default", dbus_interface="org.freedesktop.Secret.Service")
        return str(path) if str(path) != "/" else None
    except dbus.DBusException:
        return None


def keyring_items(attributes):
    """Paths of the Secret Service items with these attributes, or None when
    no Secret Service answers."""
    import dbus
    try:
        bus = dbus.SessionBus()
        service = bus.get_object("org.freedesktop.secrets", "/org/freedesktop/secrets")
        unlocked, locked = service.SearchItems(
            dbus.Dictionary(attributes, signature="ss"),
            dbus_interface="org.freedesktop.Secret.Service")
        return [str(p) for p in list(unlocked) + list(locked)]
    except dbus.DBusException:
        return None


def ferrogram_items(email):
    return keyring_items({"application": "org.ferrogram.Ferrogram", "email": email})


def row_of(label):
    """The node of the one message holding `label` (the nearest ancestor with
    a "Message menu" button), or None when `label` is not in a message (the
    chat list's previews say the same text)."""
    node = label
    for _ in range(4):
        if node.parent is None:
            return None
        node = node.parent
        menus = find_all(node, "Message menu")
        if menus:
            # A menu button is one node, or a node with its inner button.
            return node if len(menus) <= 2 else None
    return None


def message_row(inst, pattern, timeout=60.0):
    """The message whose text matches `pattern`, in the open chat."""
    rx = re.compile(pattern)

    def look():
        for node in find_all(inst.app, role="label"):
            if node.name and rx.search(node.name):
                row = row_of(node)
                if row is not None:
                    return row
        return None

    return wait_for(f"{inst.label}: a message matching {pattern!r}", look, timeout)


def open_message_menu(inst, pattern):
    """Opens the menu of the message whose text matches `pattern` through its
    "Message menu" button; returns the message's node."""
    row = message_row(inst, pattern)
    button = None
    for node in find_all(row, "Message menu"):
        if "click" in node.actions:
            button = node
    if button is None:
        raise AssertionError(f"{inst.label}: the message menu button cannot be clicked")
    click(button)
    return row


def menu_item(inst, row, name, timeout=10.0):
    def look():
        for node in find_all(row, name, "menu item") + find_all(inst.app, name, "menu item"):
            if node.actions:
                return node
        return None
    return wait_for(f"{inst.label}: the {name!r} menu item", look, timeout)


def menu_offers(row, name):
    return any(n.actions for n in find_all(row, name, "menu item"))


def composer(inst):
    return wait_for(f"{inst.label}: the composer", lambda: find(inst.app, "Message", "text"))


def send_text(inst, text):
    set_text(composer(inst), text)
    click(wait_for(f"{inst.label}: the send button", lambda: find(inst.app, "Send", "push button")))


def in_message_list(label):
    """True when `label` is inside the chat's message list (named "Messages")."""
    node = label.parent
    for _ in range(10):
        if node is None:
            return False
        if node.name == "Messages":
            return True
        node = node.parent
    return False


def gone(inst, pattern):
    """No message in the open chat matches `pattern`."""
    rx = re.compile(pattern)
    return not any(n.name and rx.search(n.name) and (row_of(n) is not None or in_message_list(n))
                   for n in find_all(inst.app, role="label"))


def message_menus(a, b, ada):
    """Each message's menu, through its "Message menu" button: Ada edits an
    own message (Bob sees the new text marked edited), copies its text, Bob
    (whose menu on Ada's message has no Edit or Delete) replies with a
    quote, and Ada deletes her message for everyone."""
    send_text(a, "Typo **here**")
    message_row(b, r"^Typo here$")
    row = open_message_menu(a, r"^Typo here$")
    click(menu_item(a, row, "Edit"))
    a.wait_label("Edit Message")
    send_text(a, "Fixed *text*")
    edited = message_row(b, r"^Fixed text$")
    wait_for("the edited mark at bob's", lambda: find(edited, "edited", "label"), 30)
    wait_for("the old text to go", lambda: gone(b, r"^Typo here$"), 30)
    # Only the edited message carries the mark.
    hello = message_row(b, r"^Hello Bob, see code")
    if find(hello, "edited", "label") is not None:
        raise AssertionError("an unedited message is marked edited")
    log("ada: edited her message from its menu; bob sees the new text, marked edited")

    row = open_message_menu(a, r"^Fixed text$")
    click(menu_item(a, row, "Copy Text"))
    copied = wait_for("the copied text", lambda: clipboard_text() == "Fixed *text*" and "ok", 20)
    log(f"ada: Copy Text put the message's source on the clipboard ({copied})")

    row = open_message_menu(b, r"^Fixed text$")
    menu_item(b, row, "Reply")
    menu_item(b, row, "Copy Text")
    if menu_offers(row, "Edit") or menu_offers(row, "Delete for Everyone"):
        raise AssertionError("bob's menu on ada's message offers Edit or Delete")
    screenshot("message-menu-dark.png")
    # Close it again (the button toggles its menu).
    click(next(n for n in find_all(row, "Message menu") if "click" in n.actions))
    row = open_message_menu(b, r"^Hello Bob, see code")
    click(menu_item(b, row, "Reply"))
    b.wait_label(f"Reply to {ada['name']}")
    send_text(b, "Quoting you")
    reply = message_row(a, r"^Quoting you$")
    wait_for("the quote in the reply", lambda: find(reply, ada["name"], "label")
             and any(n.name and n.name.startswith("Hello Bob, see code")
                     for n in find_all(reply, role="label")), 30)
    log("bob: replied to ada's message from its menu; ada sees the quote")

    row = open_message_menu(a, r"^Fixed text$")
    click(menu_item(a, row, "Delete for Everyone"))
    a.wait_label("Delete Message?")
    click(wait_for("the Delete for Everyone response",
                   lambda: button_with_label(a.app, "Delete for Everyone")))
    for inst in (a, b):
        wait_for(f"{inst.label}: the deleted message to go", lambda: gone(inst, r"^Fixed text$"), 30)
        # (A deleted message has no menu any more.)
        inst.wait_label("Message deleted", 30)
    log("ada: deleted her message for everyone from its menu; gone on both sides")


def group_and_notification(a, b, ada, bob, notifications):
    """Ada creates a group with Bob (title and members). While another
    window has the focus, Bob's app raises a notification for Ada's group
    message; clicking it (ActionInvoked, as a shell does) opens the group in
    Bob's app, where the message shows Ada's name and the header the
    member count."""
    click(wait_for("the new chat button", lambda: find(a.app, "New Chat", "push button")))
    search = wait_for("the people search", lambda: find(a.app, "Search people", None))
    set_text(search, "bob")
    try:
        tick = wait_for("bob's Add to Group toggle",
                        lambda: next((n for n in find_all(a.app, "Add to Group", "push button")
                                      if "click" in n.actions), None), 20)
    except AssertionError:
        describe(a, "Add to Group")
        raise
    click(tick)
    set_text(wait_for("the group name", lambda: find(a.app, "Group name", None)), "Analytical Engine")
    click(wait_for("Create Group", lambda: button_with_label(a.app, "Create Group")))
    a.wait_label("2 members", 60)
    log("ada: created the group 'Analytical Engine' with bob; its header shows 2 members")

    thief = FocusThief()
    try:
        before = len(notifications.all())
        send_text(a, "Hello engineers")
        message_row(a, r"^Hello engineers$")

        def arrived():
            for n in notifications.all()[before:]:
                if n["summary"] == "Analytical Engine" and "Hello engineers" in n["body"]:
                    return n
            return None

        note = wait_for("bob's notification", arrived, 60)
        if not note["body"].startswith(ada["name"]):
            raise AssertionError(f"the notification does not name the sender: {note['body']!r}")
        if "default" not in note["actions"]:
            raise AssertionError(f"the notification cannot be clicked: {note['actions']}")
        log(f"bob: notification while another window has the focus: {note['summary']}: {note['body']}")
        if gone(b, r"^Hello engineers$") is False:
            raise AssertionError("the group was open at bob's before the click")
        notifications.click(note["id"])
        row = message_row(b, r"^Hello engineers$", 30)
        wait_for("the sender's name on the group message",
                 lambda: find(row, ada["name"], "label"), 30)
        b.wait_label("2 members", 30)
        log("bob: clicking the notification opened the group: sender's name shown, 2 members")
    finally:
        thief.stop()
    time.sleep(0.5)
    screenshot("group-dark.png")


def restart_with_keyring(b, base, a, bob):
    """Bob logged in while a keyring ran: his session is kept there. He
    quits; started again, the app opens straight into the main window."""
    if not ferrogram_items(bob["email"]):
        raise AssertionError("bob's session is not in the keyring")
    # Ada sends enough that Bob's first page (50) cannot hold the chat.
    open_direct(a, "bob")
    message_row(a, r"^Quoting you$")
    field = composer(a)
    send = wait_for("the send button", lambda: find(a.app, "Send", "push button"))
    for i in range(1, 56):
        set_text(field, f"Count {i}")
        click(send)
    message_row(a, r"^Count 55$", 120)
    b.wait_label_matching(r"Count 55$", 120)
    b.stop()
    log("bob: quit the app")
    b = Instance("bob", base, reuse=True)
    # Signed in: the chat list is there, with the last message's preview
    # (the main view's own labels exist before, on a hidden page).
    b.wait_label_matching(r"Count 55$", 120)
    if find(b.app, "Welcome back. Enter your password to unlock your messages.", "label"):
        raise AssertionError("the app asked for the password")
    log("bob: started again, straight into the main window (keyring)")
    return b


def open_direct(inst, handle):
    click(wait_for(f"{inst.label}: the new chat button", lambda: find(inst.app, "New Chat", "push button")))
    set_text(wait_for(f"{inst.label}: the people search", lambda: find(inst.app, "Search people", None)),
             handle)
    inst.wait_label(f"@{handle}")
    click(wait_for(f"{inst.label}: the Message button", lambda: message_button(inst)))


def load_earlier(b, ada):
    """Bob's chat with Ada opens with the newest page from his store; the
    "Load Earlier Messages" button brings the older ones."""
    open_direct(b, "ada")
    message_row(b, r"^Count 55$", 60)
    button = wait_for("the Load Earlier Messages button",
                      lambda: clickable_named(b.app, "Load Earlier Messages"), 30)
    if not gone(b, r"^Hello Bob, see code"):
        raise AssertionError("the first message is shown before loading earlier ones")
    click(button)
    message_row(b, r"^Hello Bob, see code", 60)
    log("bob: Load Earlier Messages brought the chat's first message")


def log_out_clears_keyring(b, bob, port):
    def menu_toggle():
        for node in find_all(b.app, "Main Menu", "push button"):
            if "click" in node.actions:
                return node
        return None

    click(wait_for("the main menu", menu_toggle))
    click(wait_for("the Log Out item", lambda: find(b.app, "Log Out", "menu item")
                   or find(b.app, "_Log Out", "menu item")))
    b.page("Log In")
    wait_for("the keyring entry to go", lambda: ferrogram_items(bob["email"]) == [], 30)
    log("bob: logged out; his session is no longer in the keyring")


def german(base):
    """With LANGUAGE=de the app speaks German (po/de.po, compiled by build.rs)."""
    inst = Instance("deutsch", base, extra_env={"LANGUAGE": "de"})
    try:
        inst.page("Server wählen")
        inst.wait_label("Verbinden")
        log("the app in German: 'Server wählen'")
    finally:
        inst.stop()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Plays the rest of the desktop for the UI test, with GTK 4 from Python:

    desktop_helper.py focus      a window over the others that takes the
                                 focus (no window manager runs under Xvfb),
                                 until killed: the app's window is then not
                                 the active one
    desktop_helper.py clipboard  prints the text on the clipboard
"""

import sys

import gi

gi.require_version("Gdk", "4.0")
gi.require_version("Gtk", "4.0")
from gi.repository import Gdk, GLib, Gtk  # noqa: E402


def focus():
    Gtk.init()
    window = Gtk.Window(title="Another application")
    window.set_default_size(1100, 760)
    window.set_child(Gtk.Label(label="Another application has the focus"))
    loop = GLib.MainLoop()

    def report():
        print("active" if window.is_active() else "not active", flush=True)
        return False

    window.present()
    GLib.timeout_add(300, lambda: window.present() or False)
    GLib.timeout_add(1000, report)
    loop.run()


def clipboard():
    Gtk.init()
    loop = GLib.MainLoop()
    result = {}

    def done(board, res):
        try:
            result["text"] = board.read_text_finish(res)
        except GLib.Error as e:
            result["error"] = e.message
        loop.quit()

    Gdk.Display.get_default().get_clipboard().read_text_async(None, done)
    GLib.timeout_add_seconds(10, loop.quit)
    loop.run()
    if "text" not in result or result["text"] is None:
        sys.exit(f"no text on the clipboard ({result.get('error', 'timed out')})")
    sys.stdout.write(result["text"])


if __name__ == "__main__":
    {"focus": focus, "clipboard": clipboard}[sys.argv[1]]()

#!/usr/bin/python3
"""A stand-in for the desktop's notification server in the UI test: owns
org.freedesktop.Notifications on the session bus (GLib's fallback backend
for gio::Notification when no org.gtk.Notifications or portal answers),
appends every notification to a JSON-lines file, and clicks one on request
the way a shell does, by emitting ActionInvoked(id, "default").

    notification_server.py RECORD_FILE

The test asks for a click with
    org.ferrogram.TestNotifications.Click(u id, s action)
on the same object. Both calls are plain D-Bus; nothing here knows the app.
"""

import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

BUS_NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
IFACE = "org.freedesktop.Notifications"
TEST_IFACE = "org.ferrogram.TestNotifications"


class Server(dbus.service.Object):
    def __init__(self, bus, record):
        super().__init__(bus, PATH)
        self.record = record
        self.next_id = 1

    @dbus.service.method(IFACE, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["actions", "body"]

    @dbus.service.method(IFACE, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("ferrogram-test", "Ferrogram", "1", "1.2")

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u",
                         sender_keyword="sender")
    def Notify(self, app_name, replaces_id, icon, summary, body, actions, hints,
               timeout, sender=None):
        nid = int(replaces_id) or self.next_id
        if not replaces_id:
            self.next_id += 1
        entry = {
            "id": nid,
            "sender": str(sender),
            "app_name": str(app_name),
            "summary": str(summary),
            "body": str(body),
            "actions": [str(a) for a in actions],
        }
        with open(self.record, "a") as f:
            f.write(json.dumps(entry) + "\n")
        return dbus.UInt32(nid)

    @dbus.service.method(IFACE, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        self.NotificationClosed(nid, 3)

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    @dbus.service.signal(IFACE, signature="us")
    def ActionInvoked(self, nid, action):
        pass

    @dbus.service.method(TEST_IFACE, in_signature="us", out_signature="")
    def Click(self, nid, action):
        self.ActionInvoked(dbus.UInt32(nid), action)
        self.NotificationClosed(dbus.UInt32(nid), 2)


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    name = dbus.service.BusName(BUS_NAME, bus, do_not_queue=True)
    server = Server(bus, sys.argv[1])
    print("ready", flush=True)
    GLib.MainLoop().run()
    del name, server


if __name__ == "__main__":
    main()

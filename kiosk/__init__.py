"""The lobby kiosk's own client (`queue-kiosk`): pairing, the full-screen page, the print bridge.

`queue-kiosk pair CODE --server URL` exchanges a manager's one-time pairing code for a device
token kept in the local config file; `queue-kiosk run` sends heartbeats with the printer's state,
serves a loopback print bridge the kiosk page posts tickets to (printed on an ESC/POS printer
through python-escpos) and opens the kiosk page full screen in Chromium's kiosk mode.
"""

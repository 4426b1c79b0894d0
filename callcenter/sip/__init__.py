"""SIP signalling: message grammar, transports, transactions, dialogs, registrar.

Modules are imported directly (``from callcenter.sip.message import SipMessage``); this
package file stays empty of imports so that loading one layer never drags in the others.
"""

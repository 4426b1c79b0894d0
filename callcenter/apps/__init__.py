"""Small call applications (the echo test, …) written against ``callcenter.sip.calls.Call``."""

"""Loading and validating the configuration directory.

Layout of a config directory (see config/ for the demo):

- ``server.yaml``   SIP listeners, RTP range, HTTP, storage, state backend, speech, logging
- ``agents.yaml``   agents (routing profile + SIP credentials as HA1 + desktop login) and supervisors
- ``skills.yaml``, ``queues.yaml``   routing (validated by ``routing.config``)
- ``services.yaml`` DNIS → service (validated by ``callcenter.ivr.services``)

Every file is validated by pydantic; any error raises :class:`ConfigError`
naming the file, the dotted key and the reason, and the server refuses to start.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidationError,
    field_validator,
    model_validator,
)

from callcenter.configerrors import ConfigError, from_validation_error
from callcenter.email.config import EmailCfg
from callcenter.yamlkeys import UniqueKeyLoader, not_utf8


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listener(Strict):
    transport: Literal["udp", "tcp", "tls"]
    host: str
    port: int = Field(5060, ge=1, le=65535)  # 5061 for tls when not given

    @model_validator(mode="before")
    @classmethod
    def _tls_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("transport") == "tls" and "port" not in data:
            return {**data, "port": 5061}
        return data

    @field_validator("host")
    @classmethod
    def _ip(cls, v: str) -> str:
        ipaddress.ip_address(v)  # a listener binds an address, not a name
        return v


class RegistrationCfg(Strict):
    min_expires: int = Field(60, ge=1)
    max_expires: int = Field(3600, ge=1)
    default_expires: int = Field(3600, ge=1)
    persist: bool = True  # keep bindings in <data_dir>/sip-bindings.json across restarts

    @model_validator(mode="after")
    def _order(self) -> RegistrationCfg:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need min_expires <= default_expires <= max_expires")
        return self


class ThrottleCfg(Strict):
    """Password-guessing throttle (callcenter.throttle): the source gets the lock, which
    doubles per repeat up to lockout_max_s; the account gets a delay doubling per failure
    after account_free_failures, up to account_max_delay_s, reset by a success."""

    lockout_failures: int = Field(5, ge=1)
    lockout_window_s: float = Field(600, gt=0)
    lockout_s: float = Field(300, gt=0)
    lockout_max_s: float = Field(3600, gt=0)
    account_free_failures: int = Field(5, ge=0)
    account_delay_s: float = Field(1, gt=0)
    account_max_delay_s: float = Field(60, gt=0)


class AuthCfg(ThrottleCfg):
    nonce_ttl_s: int = Field(300, ge=10)


def _pem(kind: str) -> Any:
    """A field validator: the file must be a readable PEM ``kind`` (callcenter.sip.tls)."""

    def check(cls: type, v: str | None) -> str | None:
        from callcenter.sip.tls import check_pem

        return v if v is None else check_pem(v, kind)

    return classmethod(check)


class TlsFilesCfg(Strict):
    """A certificate and its key (PEM). Loaded at start-up; a bad file refuses the start."""

    cert_file: str
    key_file: str

    _cert = field_validator("cert_file")(_pem("CERTIFICATE"))
    _key = field_validator("key_file")(_pem("PRIVATE KEY"))

    @model_validator(mode="after")
    def _pair(self) -> TlsFilesCfg:
        from callcenter.sip.tls import server_context

        server_context(self.cert_file, self.key_file)  # the key must match the certificate
        return self


class SipTlsCfg(TlsFilesCfg):
    """SIP over TLS (docs/sip.md): the certificate tls listeners present, and trust."""

    ca_file: str | None = None  # CA for client certificates and for TLS peers we dial
    verify_client: bool = False  # mutual TLS: every client must present a cert signed by ca_file
    verify_server: bool = True  # check the certificate of a TLS peer we dial (trunks)
    advertised_port: int | None = Field(None, ge=1, le=65535)  # Via/Contact port over TLS

    _ca = field_validator("ca_file")(_pem("CERTIFICATE"))

    @model_validator(mode="after")
    def _ca_for_clients(self) -> SipTlsCfg:
        if self.verify_client and not self.ca_file:
            raise ValueError("verify_client needs ca_file (the CA that signs the phones' certificates)")
        return self


class SessionCfg(Strict):
    media_timeout_s: float = Field(30.0, gt=0)
    session_expires_s: int = Field(1800, ge=90)


class SipLimitsCfg(Strict):
    """Per-source admission of new calls (callcenter/sip/limits.py, docs/sip.md): a token
    bucket of INVITEs and a cap on calls up at once per source address; 0 turns one off."""

    invite_rate: float = Field(20.0, ge=0)  # INVITEs per second, sustained
    invite_burst: int = Field(40, ge=1)
    max_calls_per_source: int = Field(100, ge=0)
    refusals_before_drop: int = Field(20, ge=1)  # 503s in a row, then silence (a flood)
    retry_after_s: int = Field(5, ge=1)
    # networks exempt from the limits: the SBC or Kamailio in front, a carrier's trunk
    trusted: list[str] = ["127.0.0.0/8", "::1/128"]

    @field_validator("trusted")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"{net!r} is not an address or network: {exc}") from None
        return v


class SipTcpCfg(Strict):
    """Stream (TCP and TLS) connection limits (callcenter/sip/transport.py)."""

    max_connections: int = Field(4096, ge=1)
    max_per_ip: int = Field(64, ge=1)  # phones behind one NAT share an address
    message_timeout_s: float = Field(20.0, gt=0)  # first byte to last of one message; bytes don't extend it


class SipCfg(Strict):
    listen: list[Listener]
    advertised_host: str | None = None
    advertised_port: int | None = Field(None, ge=1, le=65535)
    realm: str = "callcenter.local"
    registration: RegistrationCfg = RegistrationCfg()
    auth: AuthCfg = AuthCfg()
    session: SessionCfg = SessionCfg()
    tls: SipTlsCfg | None = None  # needed by a tls listener
    limits: SipLimitsCfg = SipLimitsCfg()
    tcp: SipTcpCfg = SipTcpCfg()

    @field_validator("listen")
    @classmethod
    def _nonempty(cls, v: list[Listener]) -> list[Listener]:
        if not v:
            raise ValueError("at least one SIP listener is required")
        return v

    @model_validator(mode="after")
    def _tls_files(self) -> SipCfg:
        if self.tls is None and any(x.transport == "tls" for x in self.listen):
            raise ValueError("a tls listener needs sip.tls (cert_file, key_file)")
        return self


class RtpCfg(Strict):
    host: str = "127.0.0.1"
    port_min: int = Field(20000, ge=1024, le=65534)
    port_max: int = Field(29999, ge=1025, le=65535)
    codecs: list[Literal["PCMU", "PCMA"]] = ["PCMU", "PCMA"]
    # 1: media runs in the server process. N >= 2: N media worker processes
    # (callcenter.media.worker), each with an equal slice of the port range, for when one
    # core cannot carry the calls' RTP and the signalling both.
    workers: int = Field(1, ge=1, le=64)
    # SCHED_RR priority for media worker processes (as Asterisk -p, FreeSWITCH -rp): keeps
    # the 20 ms clock on time on a busy host. 0: normal scheduling. Workers only.
    realtime_priority: int = Field(0, ge=0, le=99)
    # SRTP (SDES) on call legs: off | optional (answer SRTP with SRTP, offer it best-effort)
    # | mandatory (only SRTP; a plain offer gets 488). docs/media.md
    srtp: Literal["off", "optional", "mandatory"] = "off"
    # Latch to the first source that sends when the SDP address is private or unroutable (a
    # caller behind NAT), instead of only to the SDP's address and port: docs/media.md
    comedia: bool = False

    @field_validator("srtp", mode="before")
    @classmethod
    def _yaml_off(cls, v: Any) -> Any:
        return "off" if v is False else v  # YAML 1.1 reads a bare `off` as false

    @model_validator(mode="after")
    def _range(self) -> RtpCfg:
        if self.port_max - self.port_min < 2:
            raise ValueError("port_max must be at least port_min + 2")
        if self.realtime_priority and self.workers < 2:
            raise ValueError("realtime_priority applies to media worker processes: set workers >= 2")
        if (self.port_max - self.port_min) // 2 + 1 < self.workers:
            raise ValueError(f"the port range has fewer even ports than {self.workers} workers need")
        return self


class HttpLimitsCfg(Strict):
    """Request body limits (413) and password hashes in flight (429): callcenter/web/limits.py."""

    body_bytes: int = Field(65536, ge=1024)
    login_body_bytes: int = Field(4096, ge=256)
    password_hashes: int = Field(2, ge=1)  # argon2 verifications at once (64 MiB each)
    password_hash_queue: int = Field(16, ge=0)  # more wait; beyond that, 429


class HttpCfg(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)  # 0 = any free port (tests)
    token_ttl_s: int = Field(900, ge=60)  # access token lifetime; the pages renew at 2/3 of it
    session_max_s: int = Field(12 * 3600, ge=300)  # renewals end this long after the login
    jwt_key_file: str | None = None  # token signing key; unset: jwt.key in data_dir, created once (0600)
    tls: TlsFilesCfg | None = None  # HTTPS and WSS with this certificate (docs/web.md)
    login_throttle: ThrottleCfg = ThrottleCfg()  # desktop logins, as sip.auth for phones
    limits: HttpLimitsCfg = HttpLimitsCfg()


class DatabaseCfg(Strict):
    url: str = "sqlite+aiosqlite:///var/callcenter.db"  # default: callcenter.db in data_dir
    default_region: str = "GB"  # for numbers dialled without a country code

    @field_validator("url")
    @classmethod
    def _supported(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        from crm_bridge.db import normalize_url

        try:
            driver = make_url(normalize_url(v)).drivername
        except ArgumentError:
            raise ValueError("not a database URL (sqlite:///FILE or postgresql://USER@HOST/DB)") from None
        if driver not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(f"unsupported database {driver!r}: use sqlite:///FILE or postgresql://USER@HOST/DB")
        return v

    def sqlite_file(self) -> Path | None:
        """The database file of a SQLite URL (None for PostgreSQL and in-memory SQLite)."""
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)


class SpeechCfg(Strict):
    engine: Literal["pyttsx3", "espeak-ng"] = "pyttsx3"
    tts_cache_dir: str = "var/tts-cache"
    rate: int = Field(160, ge=60, le=400)
    asr_confidence: float = Field(0.6, ge=0, le=1)  # the value measured best in bench/ivr_speech.py


class CrmCfg(Strict):
    files_dir: str = "var/files"
    webhooks: list[dict[str, Any]] = []  # validated by crm_bridge.outbox.WebhookSink
    seed_demo: bool = False


class QueueingCfg(Strict):
    """What a caller hears while waiting for an agent."""

    announce_every_s: float = Field(30.0, gt=0)  # position and estimated wait, then music
    offer_options_after_s: float = Field(60.0, ge=0)  # then also: 1 = voicemail, 2 = call back


class CallbacksCfg(Strict):
    """Calling customers back who asked for it (queue option 2 or the IVR's ``callback`` step).

    With ``dial_uri`` unset a request is only recorded (CRM outcome ``callback_requested``),
    for people to work from the CRM. With it set, the request keeps the caller's place in
    the queue; when an agent is chosen their phone rings first, and once they answer the
    server dials the customer through ``dial_uri`` (the outbound trunk or gateway).
    """

    dial_uri: str | None = None  # e.g. "sip:{digits}@trunk.example:5060"; {number} = +E.164
    ring_s: float = Field(30.0, gt=0, le=300)  # how long the customer's phone may ring
    max_attempts: int = Field(3, ge=1, le=10)
    retry_after_s: float = Field(300.0, ge=0)  # back in the queue, same place, after this long

    @field_validator("dial_uri")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("sip:", "sips:")):
            raise ValueError("must be a sip: URI template")
        if "{number}" not in value and "{digits}" not in value:
            raise ValueError("must contain {number} (+E.164) or {digits} (E.164 without '+')")
        try:
            value.format(number="+1", digits="1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{number}} and {{digits}} may be used: {exc}") from None
        return value

    def uri_for(self, number: str) -> str:
        assert self.dial_uri is not None
        return self.dial_uri.format(number=number, digits=number.lstrip("+"))


class ReportsCfg(Strict):
    """Supervisor reports and the what-if simulator (docs/reports.md)."""

    interval_s: Literal[900, 1800] = 1800  # the reports page's default interval
    threshold_s: float = Field(20.0, gt=0)  # service level: answered within this many seconds
    short_abandon_s: float = Field(5.0, ge=0)  # abandons quicker than this are not held against SL
    rollup_every_s: float = Field(60.0, ge=0)  # refresh the report rollup this often; 0 = never
    live_sample_s: float = Field(60.0, gt=0)  # the supervisor page's time series: one sample per …
    live_history_h: float = Field(4.0, gt=0, le=48)  # … kept this long
    simulate_max_contacts: int = Field(200_000, ge=1)  # a what-if from the page replays at most this many


class PrivacyRoleCfg(Strict):
    """What one role may read of customers (docs/web.md#privacy). ``lookup``: ``current`` = only
    the customer of the reader's offered/connected contact, ``any`` = any customer;
    ``history``: which past interactions (``own`` = those the reader handled);
    ``notes``: whose wrap-up notes show (the others' are redacted)."""

    lookup: Literal["current", "any"]
    history: Literal["own", "all", "none"]
    notes: Literal["own", "all", "none"]


class AgentPrivacyCfg(PrivacyRoleCfg):
    lookup: Literal["current", "any"] = "current"
    history: Literal["own", "all", "none"] = "all"
    notes: Literal["own", "all", "none"] = "own"


class SupervisorPrivacyCfg(PrivacyRoleCfg):
    lookup: Literal["current", "any"] = "any"
    history: Literal["own", "all", "none"] = "all"
    notes: Literal["own", "all", "none"] = "all"


class PrivacyCfg(Strict):
    agent: AgentPrivacyCfg = AgentPrivacyCfg()
    supervisor: SupervisorPrivacyCfg = SupervisorPrivacyCfg()
    log_reads: bool = True  # audit supervisors' reads and agents' reads of others' interactions


class DeskCfg(Strict):
    # An Available agent with no desk connection for this long goes Not ready (disconnected);
    # null: never. A reload or a short network drop reconnects well within it.
    presence_grace_s: float | None = Field(60.0, ge=0)
    heartbeat_s: float = Field(20.0, gt=0)  # WebSocket ping interval; no pong within it closes the socket


class BoardThresholdsCfg(Strict):
    """When the supervisor board colours a queue tile amber (warn) or red (alarm) and raises
    its alert banner: service level (percent) at or below, longest wait (seconds) at or above."""

    service_level_warn: float = Field(80.0, ge=0, le=100)
    service_level_alarm: float = Field(70.0, ge=0, le=100)
    longest_wait_warn_s: float = Field(60.0, ge=0)
    longest_wait_alarm_s: float = Field(120.0, ge=0)

    @model_validator(mode="after")
    def _alarm_beyond_warn(self) -> BoardThresholdsCfg:
        if self.service_level_alarm > self.service_level_warn:
            raise ValueError("service_level_alarm must not be above service_level_warn")
        if self.longest_wait_alarm_s < self.longest_wait_warn_s:
            raise ValueError("longest_wait_alarm_s must not be below longest_wait_warn_s")
        return self


class BoardCfg(Strict):
    thresholds: BoardThresholdsCfg = BoardThresholdsCfg()


class LoggingCfg(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class FaxCfg(Strict):
    """Fax over SIP (docs/fax.md). A service whose flow is ``fax`` receives faxes; calls to
    the services in ``detect_on`` switch to fax reception when the caller's CNG tone is
    heard while the IVR runs, and become a contact of ``detect_service``."""

    ident: str = Field("", max_length=20, pattern=r"^[ -~]*$")  # our CSI: printable ASCII
    ecm: bool = True  # error correction (T.30 Annex A): pages survive packet loss
    t38: bool = True  # answer a T.38 re-INVITE; false: 488, the fax stays on G.711
    detect_on: list[str] = []  # services (names) whose calls listen for CNG
    detect_service: str = "fax-in"  # the service (queue, skills) a detected fax joins
    skills: dict[str, int] = {"fax": 1}  # what a fax task requires of the agent
    max_seconds: float = Field(900.0, gt=0)  # a reception longer than this is ended


#: the flows shipped next to the package (the repository's ivr_flows/), when flows_dir is unset
PACKAGED_FLOWS = Path(__file__).resolve().parent.parent / "ivr_flows"


class TurnCfg(Strict):
    """A TURN server for browser phones behind NAT (not shipped: coturn or a provider's)."""

    url: str = Field(pattern=r"^turns?:[^\s]+$")  # turn:host:3478?transport=udp, turns:host:5349
    username: str = ""
    credential: str = ""


class WebRtcCfg(Strict):
    """The desk's browser phone (docs/webrtc.md)."""

    enabled: bool = True
    # addresses our ICE host candidates are gathered on; []: every interface but loopback
    # (aioice's rule). 127.0.0.1 serves a browser on this host (tests).
    ice_hosts: list[IPvAnyAddress] = []
    stun_url: str | None = Field(None, pattern=r"^stun:[^\s]+$")  # server-reflexive candidates behind 1:1 NAT
    turn: TurnCfg | None = None
    binding_ttl_s: float = Field(120.0, ge=30.0, le=3600.0)  # the gateway renews at a third of it
    # a G.711 line's SRTP is carried by the media engine/workers once DTLS is up (lean.py);
    # false keeps every packet on aiortc's path in the server's loop
    lean_media: bool = True


class ClusterCfg(Strict):
    """Several nodes behind a SIP edge (docs/cluster.md). Off: one node, nothing shared."""

    enabled: bool = False
    node_id: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9._-]*$")  # "": <hostname>-<pid>
    redis_url: str = "redis://127.0.0.1:6379/0"  # the bus bridge, node leases, SIP bindings
    prefix: str = Field("callcenter", min_length=1, pattern=r"^[A-Za-z0-9:._-]+$")
    lease_s: float = Field(10.0, ge=1.0, le=300.0)  # a node silent this long is taken over
    probe_s: float = Field(1.0, gt=0, le=60.0)  # Redis/PostgreSQL reachability check (/healthz)
    # A caller waiting here moves to a node with an agent free for them (cluster/handoff.py).
    handoff: bool = True


class ServerConfig(Strict):
    # Everything the server writes: the CRM database (SQLite), TTS cache, files, voicemail,
    # music on hold, the speech model. Relative to the working directory; the server
    # creates it (not its parents).
    data_dir: str = "var"
    # IVR flows; relative to this config directory. Unset: the flows shipped with callcenter.
    flows_dir: str | None = None
    sip: SipCfg
    rtp: RtpCfg = RtpCfg()
    http: HttpCfg = HttpCfg()
    database: DatabaseCfg = DatabaseCfg()
    speech: SpeechCfg = SpeechCfg()
    crm: CrmCfg = CrmCfg()
    queueing: QueueingCfg = QueueingCfg()
    callbacks: CallbacksCfg = CallbacksCfg()
    logging: LoggingCfg = LoggingCfg()
    reports: ReportsCfg = ReportsCfg()
    privacy: PrivacyCfg = PrivacyCfg()
    desk: DeskCfg = DeskCfg()
    board: BoardCfg = BoardCfg()  # the supervisor board's tile colours and alerts
    email: EmailCfg = EmailCfg()  # the email channel: mailboxes, SMTP listener, IMAP, relay (docs/email.md)
    fax: FaxCfg = FaxCfg()
    cluster: ClusterCfg = ClusterCfg()  # several nodes sharing Redis and PostgreSQL (docs/cluster.md)
    webrtc: WebRtcCfg = WebRtcCfg()  # the desk's browser phone (docs/webrtc.md)

    @model_validator(mode="before")
    @classmethod
    def _in_data_dir(cls, data: Any) -> Any:
        """Paths left unset follow data_dir, so one key moves everything the server writes."""
        if not isinstance(data, dict) or "data_dir" not in data:
            return data
        d = str(data["data_dir"]).rstrip("/")
        data = dict(data)
        derived = (("speech", "tts_cache_dir", f"{d}/tts-cache"), ("crm", "files_dir", f"{d}/files"),
                   ("database", "url", f"sqlite+aiosqlite:///{d}/callcenter.db"))  # fmt: skip
        for section, key, value in derived:
            sub = data.get(section) or {}
            if isinstance(sub, dict) and key not in sub:
                data[section] = {**sub, key: value}
        return data


class SipAccount(Strict):
    """SIP credentials stored as HA1 hashes (never the password)."""

    username: str
    ha1_md5: str = Field(pattern=r"^[0-9a-f]{32}$")
    ha1_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class DesktopLogin(Strict):
    password_hash: str = Field(pattern=r"^\$argon2")


class AgentSecrets(Strict):
    id: str
    sip: SipAccount
    desktop: DesktopLogin


class Supervisor(Strict):
    username: str
    name: str = ""
    password_hash: str = Field(pattern=r"^\$argon2")
    sip: SipAccount | None = None  # the phone the server calls to listen/whisper/barge (docs/recording.md)


class AppConfig(BaseModel):
    """Everything loaded from one config directory."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    directory: Path
    server: ServerConfig
    agents: list[dict[str, Any]]  # raw routing profile of each agent (validated by routing)
    agent_secrets: dict[str, AgentSecrets]
    supervisors: dict[str, Supervisor]
    routing: Any  # routing.config model
    services: Any  # callcenter.ivr.services model
    data_dir: Path
    flows_dir: Path = PACKAGED_FLOWS
    webchat: Any = None  # callcenter.webchat.config.WebChatConfig from webchat.yaml; None = no web channel
    recording: Any = None  # callcenter.recording.config.RecordingSettings from recording.yaml; None = none


# --- loading -----------------------------------------------------------------


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; syntax errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([(str(path), "", "file is missing")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([(str(path), "", not_utf8(exc))]) from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([(str(path), where, f"invalid YAML: {problem}")]) from None


def _validate(model: type[BaseModel], data: Any, file: Path, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(file, exc, prefix) from None


AgentsFile = tuple[list[dict[str, Any]], dict[str, AgentSecrets], dict[str, Supervisor]]


def _agents(path: Path) -> AgentsFile:
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("agents"), list):
        raise ConfigError([(str(path), "agents", "expected a list of agents")])
    unknown = set(raw) - {"agents", "supervisors"}
    if unknown:
        raise ConfigError([(str(path), k, "unknown key") for k in sorted(unknown)])
    profiles: list[dict[str, Any]] = []
    secrets: dict[str, AgentSecrets] = {}
    for i, entry in enumerate(raw["agents"]):
        if not isinstance(entry, dict):
            raise ConfigError([(str(path), f"agents.{i}", "expected a mapping")])
        entry = {**entry, "id": str(entry.get("id", ""))}
        s = _validate(
            AgentSecrets,
            {"id": entry["id"], "sip": entry.get("sip"), "desktop": entry.get("desktop")},
            path,
            f"agents.{i}",
        )
        if s.id in secrets:
            raise ConfigError([(str(path), f"agents.{i}.id", f"duplicate agent id {s.id!r}")])
        secrets[s.id] = s
        profiles.append({k: v for k, v in entry.items() if k not in ("sip", "desktop")})
    sups: dict[str, Supervisor] = {}
    for i, entry in enumerate(raw.get("supervisors") or []):
        sup = _validate(Supervisor, entry, path, f"supervisors.{i}")
        sups[sup.username] = sup
    return profiles, secrets, sups


def _webhooks(server: ServerConfig, path: Path) -> None:
    from crm_bridge.outbox import WebhookSink

    names: set[str] = set()
    for i, hook in enumerate(server.crm.webhooks):
        try:
            sink = WebhookSink.from_config(hook)
        except (TypeError, ValueError) as exc:
            raise ConfigError([(str(path), f"crm.webhooks.{i}", str(exc))]) from None
        if sink.name in names:
            raise ConfigError([(str(path), f"crm.webhooks.{i}.name", f"duplicate sink name {sink.name!r}")])
        names.add(sink.name)


def _routing(d: Path, profiles: list[dict[str, Any]]) -> Any:
    from routing.config import ConfigError as RoutingConfigError
    from routing.config import build_config

    docs = {}
    for name, allowed in (("skills.yaml", {"skills"}), ("queues.yaml", {"queues", "settings"})):
        docs[name] = read_yaml(d / name)
        if not isinstance(docs[name], dict):
            raise ConfigError([(str(d / name), "", "expected a mapping")])
        extra = sorted(set(docs[name]) - allowed, key=str)
        if extra:
            why = f"unknown key (expected {sorted(allowed)})"
            raise ConfigError([(str(d / name), str(k), why) for k in extra])
    try:
        return build_config(docs["skills.yaml"], docs["queues.yaml"], profiles)
    except RoutingConfigError as exc:
        # routing reports "key.path: reason"; the first key part tells which file it came from
        files = {"skills": "skills.yaml", "queues": "queues.yaml", "settings": "queues.yaml",
                 "agents": "agents.yaml"}  # fmt: skip
        problems = []
        for line in exc.problems:
            key, _, reason = line.partition(": ")
            problems.append((str(d / files.get(key.split(".", 1)[0], "queues.yaml")), key, reason))
        raise ConfigError(problems) from None


def _overflow_loops(d: Path, routing: Any) -> list[tuple[str, str, str]]:
    """Queues whose overflow chain comes back to them: a task would bounce between them."""
    problems = []
    reported: set[str] = set()
    for start in routing.queues:
        chain = [start]
        while (nxt := routing.queues[chain[-1]].overflow) is not None and nxt in routing.queues:
            if nxt in chain:
                loop = chain[chain.index(nxt):]
                if not reported & set(loop):
                    reported.update(loop)
                    circle = " → ".join([*loop, nxt])
                    problems.append((str(d / "queues.yaml"), f"queues.{nxt}.overflow",
                                     f"overflow loop ({circle}): a task would bounce between these queues"))
                break
            chain.append(nxt)
    return problems


def _paths(d: Path, server: ServerConfig) -> tuple[Path, Path, list[tuple[str, str, str]]]:
    """data_dir and flows_dir, and what is wrong with the paths: the server creates data_dir
    and what goes in it, never directories elsewhere."""
    file = str(d / "server.yaml")
    data_dir = Path(server.data_dir)
    problems = []
    if not data_dir.is_dir() and not data_dir.parent.is_dir():
        problems.append((file, "data_dir", f"parent directory {data_dir.parent} does not exist"))
    db_file = server.database.sqlite_file()
    in_data_dir = db_file is not None and db_file.parent.resolve().is_relative_to(data_dir.resolve())
    if db_file is not None and not db_file.parent.is_dir() and not in_data_dir:
        problems.append((file, "database.url", f"directory {db_file.parent} does not exist "
                         "(create it, or leave database.url unset: callcenter.db in data_dir)"))  # fmt: skip
    flows_dir = d / server.flows_dir if server.flows_dir is not None else PACKAGED_FLOWS
    return data_dir, flows_dir, problems


def _webchat(path: Path, routing: Any, services: Any) -> Any:
    """webchat.yaml (the web channel), optional: without it the server has no /chat."""
    if not path.exists():
        return None
    from callcenter.webchat.config import WebChatConfig, check_references

    cfg = _validate(WebChatConfig, read_yaml(path), path)
    check_references(cfg, path, set(routing.queues), set(services.services), set(routing.skills))
    return cfg


def _recording(path: Path, data_dir: Path, services: Any, routing: Any) -> Any:
    """recording.yaml (call recording policy), optional."""
    from callcenter.recording.config import load

    return load(path, data_dir, set(services.services), set(routing.queues))


def load_config(directory: Path | str) -> AppConfig:
    """Load and cross-check a whole config directory, or raise ConfigError."""
    from callcenter.ivr.services import load_services  # local: keeps import of this module light

    d = Path(directory)
    if not d.is_dir():
        raise ConfigError([(str(d), "", "config directory does not exist")])
    server = _validate(ServerConfig, read_yaml(d / "server.yaml"), d / "server.yaml")
    _webhooks(server, d / "server.yaml")
    profiles, secrets, sups = _agents(d / "agents.yaml")
    routing = _routing(d, profiles)
    services = load_services(d / "services.yaml")
    unknown_queues = {s.default_queue for s in services.services.values()} - set(routing.queues)
    if unknown_queues:
        why = f"unknown queue(s) {sorted(unknown_queues)}"
        raise ConfigError([(str(d / "services.yaml"), "default_queue", why)])
    mailboxes = enumerate(server.email.mailboxes)
    mailbox_queues = [(i, m.queue) for i, m in mailboxes if m.queue not in routing.queues]
    if mailbox_queues:
        raise ConfigError([(str(d / "server.yaml"), f"email.mailboxes.{i}.queue", f"unknown queue {q!r}")
                           for i, q in mailbox_queues])  # fmt: skip
    data_dir, flows_dir, problems = _paths(d, server)
    problems += _overflow_loops(d, routing)
    if problems:
        raise ConfigError(problems)
    webchat = _webchat(d / "webchat.yaml", routing, services)
    return AppConfig(
        directory=d,
        server=server,
        agents=profiles,
        agent_secrets=secrets,
        supervisors=sups,
        routing=routing,
        services=services,
        data_dir=data_dir,
        flows_dir=flows_dir,
        webchat=webchat,
        recording=_recording(d / "recording.yaml", data_dir, services, routing),
    )

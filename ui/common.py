"""What every page shares: settings (secrets -> env), the privacy-mode switch, escaping, time labels.

Every value that came from upstream (or from an uploaded file) is attacker-controlled. Pages show such
values with ``st.text`` / ``st.code`` / ``st.json`` / ``st.dataframe`` (which escape), and pass anything
that must go into ``st.markdown`` through :func:`md_escape` first. ``unsafe_allow_html`` is never used.
Escaping is not enough for bidirectional-override characters, which are text: :func:`reveal_bidi` shows
them as ``[U+202E]`` so they cannot reverse what follows them.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

import streamlit as st
from streamlit.errors import StreamlitAPIException

from otc.config import MODE_DESCRIPTIONS, Mode, Settings, load_settings
from otc.errors import ConfigError

MODE_KEY = "otc_mode"  # session_state: the privacy mode chosen in the sidebar ("local", "keyless", "all")
MODE_WIDGET_KEY = "otc_mode_radio"
PAGE_TITLE = "otc — Open Threat Correlation"
PAGE_ICON = "🛡️"
MODE_ORDER = (Mode.LOCAL, Mode.KEYLESS, Mode.ALL)
MODE_LABELS = {Mode.LOCAL: "Local only", Mode.KEYLESS: "Keyless public sources", Mode.ALL: "All configured sources"}

# CommonMark lets a backslash escape any ASCII punctuation; escaping all of it also defuses Streamlit's
# own directives (":red[...]", ":material/...:"), links, images (which would make the browser fetch a
# remote URL), HTML and "$" maths.
_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~:$&\"'=^%@,;?/")


# Bidirectional embedding, override and isolate controls. "invoice\u202efdp.exe" reads "invoiceexe.pdf", and
# the reversal runs to the end of the line — over our own text after an upstream value too ("(NAME), seen
# scanning" shows as "gninnacs nees ,(…"). Letters of right-to-left scripts are untouched.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI_VISIBLE = {ord(ch): f"[U+{ord(ch):04X}]" for ch in BIDI_CONTROLS}


def reveal_bidi(text: str) -> str:
    """``text`` with each bidi control character shown as ``[U+202E]`` (for display only, never exports)."""
    return text.translate(_BIDI_VISIBLE)


def reveal_bidi_deep(value: Any) -> Any:
    """:func:`reveal_bidi` on every string (keys included) in parsed JSON, for the raw-answer view."""
    if isinstance(value, str):
        return reveal_bidi(value)
    if isinstance(value, Mapping):
        return {reveal_bidi(str(k)): reveal_bidi_deep(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [reveal_bidi_deep(v) for v in value]
    return value


def md_escape(value: Any) -> str:
    """``value`` as text that ``st.markdown`` shows literally, on one line (it loses no character: pass
    upstream text through :func:`reveal_bidi` first).

    One thing escaping cannot stop: Streamlit's Markdown (GFM autolink literals) still turns a bare
    ``http://...`` or ``www....`` into a link. Show upstream text that may hold URLs with ``st.text``."""
    text = " ".join(str(value).split())
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)


def streamlit_secrets() -> Mapping[str, Any] | None:
    """``st.secrets`` as a flat dict, or ``None`` to let :func:`load_settings` read the file itself.

    ``OTC_SECRETS_FILE`` wins (tests point it at nothing so a developer's keys stay out). ``st.secrets``
    raises when no secrets file exists; that simply means "no secrets".
    """
    if os.environ.get("OTC_SECRETS_FILE"):
        return None
    try:
        items = dict(st.secrets)
    except FileNotFoundError:  # StreamlitSecretNotFoundError: no secrets.toml anywhere
        return None
    flat: dict[str, Any] = {}
    for name, value in items.items():
        if isinstance(value, Mapping):  # an [otc] table as well as top-level names, as the CLI allows
            flat.update({k: v for k, v in value.items() if not isinstance(v, Mapping)})
        else:
            flat[name] = value
    return flat


def base_settings() -> Settings:
    """Settings as configured (before the sidebar's mode applies). Stops the page on a bad setting."""
    try:
        return load_settings(secrets=streamlit_secrets())
    except ConfigError as exc:
        st.error(f"Configuration problem: {exc}")
        st.stop()
    except StreamlitAPIException:
        # Streamlit's parse error can quote the offending line, which may hold a key: say where only.
        st.error("`.streamlit/secrets.toml` could not be read (it is not valid TOML).")
        st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def current_mode(settings: Settings) -> Mode:
    """The privacy mode chosen in the sidebar this session, else the configured one."""
    chosen = st.session_state.get(MODE_KEY)
    try:
        return Mode(chosen) if chosen else settings.mode
    except ValueError:
        return settings.mode


def _remember_mode() -> None:
    st.session_state[MODE_KEY] = st.session_state[MODE_WIDGET_KEY]


def privacy_mode_sidebar(settings: Settings) -> Mode:
    """The sidebar's privacy-mode switch; returns the mode in force.

    The choice lives under :data:`MODE_KEY`, not the radio's own key: Streamlit drops a widget's state
    when a page without that widget runs, and each page draws its own radio.
    """
    st.session_state[MODE_KEY] = current_mode(settings).value
    st.session_state[MODE_WIDGET_KEY] = st.session_state[MODE_KEY]
    st.sidebar.radio(
        "Privacy mode",
        [m.value for m in MODE_ORDER],
        key=MODE_WIDGET_KEY,
        on_change=_remember_mode,
        format_func=lambda value: MODE_LABELS[Mode(value)],
        captions=[MODE_DESCRIPTIONS[m] for m in MODE_ORDER],
        help="Which sources may see an indicator. Set the default with OTC_MODE (or --mode on the CLI).",
    )
    mode = Mode(st.session_state[MODE_KEY])
    if mode is Mode.LOCAL:
        st.sidebar.success("Nothing leaves this machine — not even a DNS query.", icon=":material/lock:")
    elif mode is Mode.KEYLESS:
        st.sidebar.info("Indicators are sent to public services that need no key.", icon=":material/public:")
    else:
        st.sidebar.warning("Indicators are sent to every source with a configured key.",
                           icon=":material/cloud_upload:")
    return mode


def leave_legacy_page_mode() -> None:
    """Hand a page run by Streamlit's legacy ``pages/`` mode back to ``app.py``'s ``st.navigation``.

    A fresh server whose first request is ``/lookup`` (or ``/bulk?...``) finds a ``pages/`` folder and
    runs that script in the old folder-based mode, which never executes ``app.py`` and so stays in it:
    the menu lists "app, bulk, lookup, sources". Clearing the flag and rerunning makes Streamlit run
    ``app.py``, whose ``st.navigation`` keeps the requested page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    global _LEFT_LEGACY_MODE
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        # Once per process: the flag then stays off in a real server. (AppTest sets it again before every
        # run; rerunning there each time would swallow the button click that triggered the run.)
        if not _LEFT_LEGACY_MODE:
            _LEFT_LEGACY_MODE = True
            st.rerun()


_LEFT_LEGACY_MODE = False


def page_settings() -> Settings:
    """Every page's first call: page config, the privacy-mode sidebar, and the settings it acts on.

    Each page draws the sidebar itself (rather than ``app.py``) so that it is there however the page is
    run — Streamlit runs a ``pages/`` script on its own when a fresh server's first request is for it.
    """
    leave_legacy_page_mode()
    st.set_page_config(page_title=PAGE_TITLE, page_icon=PAGE_ICON, layout="wide")
    settings = base_settings()
    return settings.with_mode(privacy_mode_sidebar(settings))


def format_epoch(epoch: float | None, now: float | None = None) -> str:
    """``"3 min ago (2024-05-01 12:03 UTC)"``; ``"—"`` when unknown."""
    if epoch is None:
        return "—"
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
    return f"{format_age(now - epoch)} ({stamp})"


def format_age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            count = int(seconds // size)
            label = f"{count} {unit}" + ("s" if unit == "day" and count != 1 else "")
            return f"{label} ago"
    return "just now"


def format_duration(seconds: float | None) -> str:
    """An ETA: ``"~2 min 05 s"``; ``"—"`` when unknown."""
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"~{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"~{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"~{hours} h {minutes:02d} min"

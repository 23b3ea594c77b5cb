"""The preview page: the email at desktop and phone widths, its text part, and its inbox line."""

from __future__ import annotations

import html

from mailer.render.email import Personalised
from mailer.render.images import with_data_uris

DESKTOP_WIDTH = 640
PHONE_WIDTH = 375

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview: {subject}</title>
<style>
  body {{ margin: 0; font: 15px/1.4 system-ui, Arial, sans-serif; background: #dfe3e8;
         color: #1f2933; }}
  header {{ padding: 16px 24px; background: #fff; border-bottom: 1px solid #c5ced8; }}
  .inbox {{ max-width: 720px; padding: 10px 14px; border: 1px solid #c5ced8;
            border-radius: 6px; }}
  .inbox .from {{ font-weight: bold; }}
  .inbox .pre {{ color: #4a5561; }}
  .problems {{ margin: 12px 0 0; padding: 0; list-style: none; }}
  .problems li {{ margin: 4px 0; padding: 8px 12px; border-left: 4px solid; }}
  .problems li.error {{ background: #fdecea; border-color: #b3261e; }}
  .problems li.warning {{ background: #fff8e1; border-color: #8a6100; }}
  main {{ display: flex; flex-wrap: wrap; gap: 24px; padding: 24px; align-items: flex-start; }}
  figure {{ margin: 0; }}
  figcaption {{ font-weight: bold; margin-bottom: 6px; }}
  iframe {{ border: 1px solid #9aa5b1; background: #fff; height: 1400px; }}
  pre {{ background: #fff; padding: 16px; border: 1px solid #9aa5b1; white-space: pre-wrap;
        max-width: 80ch; }}
</style>
</head>
<body>
<header>
  <div class="inbox" aria-label="How the inbox shows it">
    <div class="from">{sender}</div>
    <div><strong>{subject}</strong> <span class="pre">— {preheader}</span></div>
  </div>
  {problems}
</header>
<main>
  <figure><figcaption>Desktop ({desktop} px)</figcaption>
    <iframe id="desktop" title="Desktop preview" width="{desktop}" srcdoc="{email}"></iframe>
  </figure>
  <figure><figcaption>Phone ({phone} px)</figcaption>
    <iframe id="phone" title="Phone preview" width="{phone}" srcdoc="{email}"></iframe></figure>
  <figure><figcaption>Text part</figcaption><pre id="text">{text}</pre></figure>
</main>
{reload}
</body>
</html>
"""

# With --watch the page polls a tiny script beside it; file:// pages may load scripts but
# not fetch files, so the version travels as a script that sets a global.
_RELOAD = """<script>
(function () {{
  var version = "{version}";
  var y = sessionStorage.getItem("mailer-scroll");
  if (y) {{ window.scrollTo(0, +y); }}
  setInterval(function () {{
    var s = document.createElement("script");
    s.src = "{script}?t=" + Date.now();
    s.onload = function () {{
      s.remove();
      if (window.mailerVersion && window.mailerVersion !== version) {{
        sessionStorage.setItem("mailer-scroll", String(window.scrollY));
        location.reload();
      }}
    }};
    s.onerror = function () {{ s.remove(); }};
    document.head.appendChild(s);
  }}, 1000);
}})();
</script>"""


def reload_script(version: str) -> str:
    """Return the contents of the version script a watching preview polls."""
    return f'window.mailerVersion = "{html.escape(version)}";\n'


def preview_page(
    email: Personalised,
    *,
    sender: str,
    preheader: str,
    problems: list[str],
    reload: tuple[str, str] | None = None,
) -> str:
    """Return the preview page; reload=(version, script name) makes it reload on change."""
    listed = ""
    if problems:
        items = "".join(
            f'<li class="{"error" if p.startswith("error") else "warning"}">{html.escape(p)}</li>'
            for p in problems
        )
        listed = f'<ul class="problems" role="alert">{items}</ul>'
    reloader = ""
    if reload is not None:
        version, script = reload
        reloader = _RELOAD.format(version=html.escape(version), script=html.escape(script))
    return _PAGE.format(
        subject=html.escape(email.subject),
        sender=html.escape(sender),
        preheader=html.escape(preheader or "(no preheader)"),
        problems=listed,
        desktop=DESKTOP_WIDTH,
        phone=PHONE_WIDTH,
        # The images that travel inside the message, shown here from data: URIs.
        email=html.escape(with_data_uris(email.html, email.images), quote=True),
        text=html.escape(email.text),
        reload=reloader,
    )

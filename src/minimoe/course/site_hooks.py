"""mkdocs hooks (mkdocs.yml `hooks:`): what makes a plain `mkdocs build` or `mkdocs serve` build the course.

`just docs` and `just docs-serve` run mkdocs on mkdocs.yml too, so there is one way the site is made:

  on_config       stage the pages (site.stage: labs/ and docs/ plus the generated pages) into
                  build/site-src/ ($MINIMOE_SITE_STAGE), point docs_dir at it, set the navigation and
                  its Spanish titles; with $MINIMOE_SITE_OFFLINE, plain .html addresses and no search box
  on_page_context the language switcher's links relative to the page, so the site works under any path
  on_pre_template the 404 page's language switcher leads to each language's home page
  on_post_page    a Spanish page searches the Spanish index (es/search/), an English one the English
  on_post_build   one search index per language, and a 404 page per language (404.html, es/404.html)

mkdocs-static-i18n builds the Spanish site inside the English build (from its on_post_build), running
every event again with `theme.language` set to "es"; it then merges both languages' search entries into
one index, which on_post_build splits again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # src/: a checkout without `pip install -e .`
try:
    from minimoe.course import site
    from minimoe.course.catalog import CourseError
except ImportError as e:  # pragma: no cover - a broken environment
    raise PluginError(f"the course site is staged by minimoe, which does not import here ({e}): "
                      "run `just setup`, then `just docs`") from None

log = logging.getLogger("mkdocs.hooks.minimoe")
CONFIG_BASE_RE = re.compile(r'(<script id="__config" type="application/json">\{[^<]*?"base": ")([^"]*)(")')
OFFLINE_CSS = "docs/stylesheets/offline.css"
_staged: dict = {}  # the last staging: its sources' fingerprint, navigation and Spanish titles
_pages_404: dict[str, str] = {}  # language -> the 404 page its build rendered


def _alternates(config) -> list[dict]:
    """The language switcher's links. mkdocs-static-i18n sets them per page as an attribute of
    config.extra (which the theme reads first), not as its key."""
    return getattr(config.extra, "alternate", None) or config.extra.get("alternate") or []


def _language(config) -> str:
    return config.theme.get("language") or "en"


@event_priority(100)  # before mkdocs-static-i18n reads the navigation and the search plugin its languages
def on_config(config):
    root = Path(config.config_file_path).resolve().parent
    stage_dir = Path(os.environ.get(site.STAGE_ENV) or root / "build" / "site-src").resolve()
    key = (site.sources_fingerprint(root), str(stage_dir))
    if _staged.get("key") != key:
        try:
            nav, es, notes = site.stage(root, stage_dir)
        except CourseError as e:
            raise PluginError(str(e)) from None
        for n in notes:
            log.info(n)
        _staged.update(key=key, nav=nav, es=es)
    config.docs_dir = str(stage_dir)
    config.nav = _staged["nav"]
    i18n = config.plugins.get("i18n")
    for lang in i18n.config.languages if i18n else ():
        if lang.locale == "es":
            lang.nav_translations = _staged["es"]
    if os.environ.get(site.OFFLINE_ENV) and OFFLINE_CSS not in config.extra_css:
        config.use_directory_urls = False  # file:// has no index.html for a folder: link the .html files
        config.extra_css.append(OFFLINE_CSS)  # hides the search box: a browser runs no search worker from file://
    return config


def _site_relative(link: str, config) -> str:
    """A root-absolute link (/path/to/site/es/) as a path from the site's root (es/), which the theme's
    `url` filter then makes relative to each page."""
    if link.startswith(("http://", "https://")) or not link.startswith("/"):
        return link
    base = urlsplit(config.site_url or "/").path.rstrip("/")
    rel = link[len(base):] if link.startswith(base + "/") else link
    return rel.lstrip("/") or "./"


@event_priority(0)  # after mkdocs-static-i18n has set the links of this page's language switcher
def on_page_context(context, page, config, nav):
    for alt in _alternates(config):
        alt["link"] = _site_relative(alt["link"], config)
    return context


def on_pre_template(template, template_name, config):
    if template_name == "404.html":  # served at any address: the switcher leads to each language's home
        base = urlsplit(config.site_url or "/").path.rstrip("/") + "/"
        suffix = "" if config.use_directory_urls else "index.html"
        for alt in _alternates(config):
            alt["link"] = base + ("" if alt["lang"] == "en" else f"{alt['lang']}/") + suffix
    return template


def _search_in_spanish(html: str) -> str:
    """Point a Spanish page's search (the theme fetches `<base>/search/search_index.json`) at es/."""
    return CONFIG_BASE_RE.sub(lambda m: m.group(1) + m.group(2).rstrip("/") + "/es/" + m.group(3), html, count=1)


def on_post_page(output, page, config):
    return _search_in_spanish(output) if _language(config) == "es" else output


def on_post_template(output_content, template_name, config):
    if template_name != "404.html":
        return output_content
    lang = _language(config)
    if lang == "es":
        output_content = _search_in_spanish(output_content)
    _pages_404[lang] = output_content  # each language's build writes 404.html at the root; on_post_build sorts them
    return output_content


@event_priority(-200)  # after mkdocs-static-i18n has built the other languages and merged their search entries
def on_post_build(config):
    site_dir = Path(config.site_dir)
    for lang, html in _pages_404.items():
        out = site_dir / ("404.html" if lang == "en" else f"{lang}/404.html")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    split_search_index(site_dir)


def split_search_index(site_dir: Path) -> None:
    """One search index per language: search/ the English pages, es/search/ the Spanish ones. The merged
    index mkdocs-static-i18n writes holds both; once split, the root index holds English only."""
    path = site_dir / "search" / "search_index.json"
    if not path.is_file():
        return
    index = json.loads(path.read_text(encoding="utf-8"))
    docs = index.get("docs", [])
    es = [{**d, "location": d["location"][len("es/"):]} for d in docs if d["location"].startswith("es/")]
    en = [d for d in docs if not d["location"].startswith("es/")]
    outs = [(path, "en", en)] + ([(site_dir / "es" / "search" / "search_index.json", "es", es)] if es else [])
    for out, lang, mine in outs:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**index, "config": {**index["config"], "lang": [lang]}, "docs": mine},
                                  ensure_ascii=False), encoding="utf-8")

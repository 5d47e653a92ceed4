// The page view for a language model: run in the page by `BrowserSession::observe`, it walks the
// DOM in document order and returns the elements a person would read or act on. Each gets a
// `data-pj-ref` attribute the first time it is seen and keeps it for the document's life, so a
// reference the model answers with still names the same element after another look at the page.
(() => {
  const REF = 'data-pj-ref';
  const MAX_TEXT = 160;
  const clean = (s) => (s || '').replace(/\s+/g, ' ').trim();
  const short = (s) => { s = clean(s); return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT - 1) + '…' : s; };

  const visible = (el) => {
    if (el.closest('[aria-hidden="true"], [hidden]')) return false;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none') return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };

  const INTERACTIVE_ROLES = new Set(['button', 'link', 'checkbox', 'radio', 'tab', 'menuitem',
    'option', 'switch', 'textbox', 'searchbox', 'combobox', 'slider', 'spinbutton']);
  const implicitRole = (el) => {
    const tag = el.tagName.toLowerCase();
    switch (tag) {
      case 'a': return el.hasAttribute('href') ? 'link' : null;
      case 'button': case 'summary': return 'button';
      case 'select': return 'combobox';
      case 'textarea': return 'textbox';
      case 'input': {
        const t = (el.getAttribute('type') || 'text').toLowerCase();
        if (t === 'hidden') return null;
        if (['button', 'submit', 'reset', 'image'].includes(t)) return 'button';
        if (t === 'checkbox' || t === 'radio') return t;
        if (t === 'range') return 'slider';
        if (t === 'number') return 'spinbutton';
        if (t === 'search') return 'searchbox';
        return 'textbox';
      }
      case 'h1': case 'h2': case 'h3': case 'h4': case 'h5': case 'h6': return 'heading';
      case 'img': return 'img';
      case 'li': return 'listitem';
      case 'td': return 'cell';
      case 'th': return 'columnheader';
      case 'p': case 'label': case 'dt': case 'dd': case 'caption': case 'legend':
      case 'blockquote': case 'pre': return 'text';
      default: return null;
    }
  };
  const roleOf = (el) => {
    const explicit = clean(el.getAttribute('role')).split(' ')[0];
    if (explicit) return explicit;
    const implicit = implicitRole(el);
    if (implicit) return implicit;
    if (el.isContentEditable && el.getAttribute('contenteditable') !== null) return 'textbox';
    if (el.hasAttribute('onclick')) return 'button';
    return null;
  };

  const labelledBy = (el) => {
    const ids = clean(el.getAttribute('aria-labelledby'));
    if (!ids) return '';
    return clean(ids.split(' ').map((id) => {
      const t = document.getElementById(id);
      return t ? t.innerText || t.textContent : '';
    }).join(' '));
  };
  const nameOf = (el, role) => {
    const aria = clean(el.getAttribute('aria-label')) || labelledBy(el);
    if (aria) return short(aria);
    const tag = el.tagName.toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select') {
      const t = (el.getAttribute('type') || '').toLowerCase();
      if (['button', 'submit', 'reset'].includes(t)) return short(el.value || t);
      if (el.labels && el.labels.length) {
        return short(Array.from(el.labels).map((l) => l.innerText || l.textContent).join(' '));
      }
      return short(el.getAttribute('placeholder') || el.getAttribute('title') || el.getAttribute('name') || '');
    }
    if (tag === 'img') return short(el.getAttribute('alt') || el.getAttribute('title') || '');
    return short(el.innerText || el.textContent || el.getAttribute('title') || '');
  };

  // The section an element sits in, outermost first: the labels of its landmark and sectioning
  // ancestors, so two "Subscribe" buttons under "Newsletter" and "Billing" read differently.
  const SECTIONS = 'section, article, aside, nav, form, fieldset, main, header, footer, dialog, ' +
    '[role="region"], [role="dialog"], [role="form"], [role="navigation"], [role="group"]';
  const sectionLabel = (s) => {
    const aria = clean(s.getAttribute('aria-label')) || labelledBy(s);
    if (aria) return short(aria);
    const legend = s.tagName.toLowerCase() === 'fieldset' && s.querySelector(':scope > legend');
    if (legend) return short(legend.innerText || legend.textContent);
    const heading = s.querySelector('h1, h2, h3, h4, h5, h6, [role="heading"]');
    if (heading && heading.closest(SECTIONS) === s) return short(heading.innerText || heading.textContent);
    return '';
  };
  const labelCache = new Map();
  const contextOf = (el) => {
    const labels = [];
    for (let s = el.parentElement && el.parentElement.closest(SECTIONS); s; s = s.parentElement && s.parentElement.closest(SECTIONS)) {
      if (!labelCache.has(s)) labelCache.set(s, sectionLabel(s));
      const label = labelCache.get(s);
      if (label) labels.unshift(label);
    }
    return labels;
  };

  let next = Number(document.documentElement.getAttribute('data-pj-next') || '1');
  const seen = new Set();
  const refOf = (el) => {
    let ref = el.getAttribute(REF);
    // A page script may clone an element with its attribute; the copy gets a number of its own.
    if (!ref || seen.has(ref)) {
      ref = String(next++);
      el.setAttribute(REF, ref);
    }
    seen.add(ref);
    return Number(ref);
  };

  const out = [];
  const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_ELEMENT, {
    acceptNode: (el) => {
      const tag = el.tagName.toLowerCase();
      if (['script', 'style', 'noscript', 'template', 'svg', 'head'].includes(tag)) return NodeFilter.FILTER_REJECT;
      return NodeFilter.FILTER_ACCEPT;
    },
  });
  for (let el = walker.currentNode; el; el = walker.nextNode()) {
    if (el.nodeType !== 1) continue;
    const role = roleOf(el);
    if (!role) continue;
    const interactive = INTERACTIVE_ROLES.has(role);
    // Text inside something actionable is that element's name, not an item of its own.
    if (!interactive && el.parentElement && el.parentElement.closest('a[href], button, [role="button"], [role="link"], label')) {
      if (role === 'text' || role === 'listitem' || role === 'cell') continue;
    }
    // A label with its control is that control's name.
    if (el.tagName.toLowerCase() === 'label' && el.control) continue;
    if (!visible(el)) continue;
    const name = nameOf(el, role);
    if (!interactive && !name) continue;
    const item = { ref: refOf(el), role, name, context: contextOf(el), interactive };
    const tag = el.tagName.toLowerCase();
    if (role === 'heading') item.level = Number(tag.slice(1)) || null;
    if (tag === 'input' || tag === 'textarea' || tag === 'select') {
      const t = (el.getAttribute('type') || '').toLowerCase();
      // A password's value never leaves the page.
      if (t !== 'password' && !['checkbox', 'radio', 'submit', 'button', 'reset'].includes(t) && el.value) item.value = short(el.value);
      if (t === 'checkbox' || t === 'radio') item.checked = !!el.checked;
      if (el.disabled) item.disabled = true;
    }
    if (role === 'link') item.href = short(el.getAttribute('href'));
    out.push(item);
  }
  document.documentElement.setAttribute('data-pj-next', String(next));
  return { url: location.href, title: document.title, elements: out };
})()

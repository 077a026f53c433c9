// moahook dashboard: signs in (Telegram initData or a code from the bot), then shows and
// changes the user's settings through /app/api and keeps orders and alerts live by
// short polling. No framework, no build step; every text comes from the catalogues the
// server embedded in the page, and data is only ever inserted as text (never as HTML).
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("config").textContent);
  const TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js";
  const CHECK_NAMES = ["token", "account", "fill"];
  const state = { lang: config.lang, csrf: "", overview: null, timer: 0, signinUser: "" };

  const $ = (id) => document.getElementById(id);

  function t(key, vars) {
    const catalog = config.texts[state.lang] || config.texts.ko;
    let text = catalog[key] !== undefined ? catalog[key] : key;
    if (vars) {
      for (const [name, value] of Object.entries(vars)) {
        text = text.split("{" + name + "}").join(String(value));
      }
    }
    return text;
  }

  function applyTexts() {
    document.documentElement.lang = state.lang;
    for (const element of document.querySelectorAll("[data-t]")) {
      element.textContent = t(element.dataset.t);
    }
  }

  function el(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function show(element, visible) {
    element.hidden = !visible;
  }

  // --- notices -------------------------------------------------------------------------

  let noticeTimer = 0;
  function notify(message, kind) {
    const box = $("notice");
    box.textContent = message;
    box.className = "notice " + (kind || "info");
    show(box, true);
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => show(box, false), kind === "error" ? 9000 : 5000);
  }

  function errorText(data) {
    switch (data && data.code) {
      case "wrong_code": return t("error.wrong_code", { left: data.tries_left });
      case "code_expired": return t("error.code_expired");
      case "code_void": return t("error.code_void");
      case "rate_limited": return t("error.rate_limited", { seconds: data.retry_after });
      case "delivery": return t("error.delivery");
      case "real_needs_keys": return t("error.real_needs_keys");
      case "busy": return t("error.busy");
      case "no_session": return t("error.session");
      default: return t("error.generic", { reason: (data && data.error) || "?" });
    }
  }

  // --- the API -------------------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
    let response;
    try {
      response = await fetch(config.api + path, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      return { status: 0, data: { error: String(error) } };
    }
    let data = {};
    try {
      data = await response.json();
    } catch (error) {
      data = { error: response.statusText };
    }
    if (response.status === 401 && data.code === "no_session" && state.csrf) {
      signedOut(t("error.session"));
    }
    return { status: response.status, data: data };
  }

  // --- Telegram ------------------------------------------------------------------------

  function hashParams() {
    return new URLSearchParams(window.location.hash.slice(1));
  }

  function initData() {
    const webApp = window.Telegram && window.Telegram.WebApp;
    if (webApp && webApp.initData) return webApp.initData;
    return hashParams().get("tgWebAppData") || "";
  }

  // Telegram's script only helps inside a Telegram client (theme, full height); a plain
  // browser (and a machine without network) never asks for it.
  function inTelegramClient() {
    if (window.TelegramWebviewProxy) return true;
    return window.parent !== window && hashParams().has("tgWebAppPlatform");
  }

  function loadTelegramScript() {
    const script = document.createElement("script");
    script.src = TELEGRAM_SCRIPT;
    script.async = true;
    script.addEventListener("load", () => {
      const webApp = window.Telegram && window.Telegram.WebApp;
      if (!webApp) return;
      webApp.ready();
      webApp.expand();
    });
    document.head.appendChild(script);
  }

  // --- signing in and out ----------------------------------------------------------------

  function signedIn(data) {
    state.csrf = data.csrf;
    state.lang = data.user.lang || state.lang;
    applyTexts();
    show($("signin"), false);
    show($("app"), true);
    show($("sign-out"), true);
    refresh();
  }

  function signedOut(message) {
    state.csrf = "";
    clearTimeout(state.timer);
    show($("app"), false);
    show($("sign-out"), false);
    show($("env-badge"), false);
    show($("signin"), true);
    show($("signin-telegram"), false);
    show($("signin-form"), true);
    show($("signin-code-form"), false);
    if (message) notify(message, "error");
  }

  // The user initData names (unchecked here: the server checks the signature).
  function telegramUser(data) {
    try {
      return JSON.parse(new URLSearchParams(data).get("user") || "{}");
    } catch (error) {
      return {};
    }
  }

  // Before sign-in, the Telegram app's language says which one to show.
  function telegramLang(data) {
    const code = String(telegramUser(data).language_code || "").slice(0, 2);
    return config.texts[code] ? code : "";
  }

  async function start() {
    if (inTelegramClient()) loadTelegramScript();
    const data = initData();
    state.lang = (data && telegramLang(data)) || state.lang;
    applyTexts();
    const current = await api("GET", "/session");
    const signedInAs = current.status === 200 && current.data.csrf && current.data.user;
    // Reopened inside Telegram by the same user: the session goes on.
    if (signedInAs && (!data || signedInAs.telegram_id === telegramUser(data).id)) {
      return signedIn(current.data);
    }
    if (data) {
      show($("signin"), true);
      show($("signin-form"), false);
      show($("signin-telegram"), true);
      const result = await api("POST", "/session", { init_data: data });
      if (result.status === 200) return signedIn(result.data);
      signedOut();
      notify(t("signin.failed", { reason: result.data.error || result.status }), "error");
      return;
    }
    signedOut();
  }

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const user = $("signin-user").value.trim();
    if (!user) return;
    const result = await api("POST", "/signin/code", { user: user });
    if (result.status !== 202) return notify(errorText(result.data), "error");
    state.signinUser = user;
    show($("signin-form"), false);
    show($("signin-code-form"), true);
    $("signin-code").focus();
  });

  $("signin-code-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = $("signin-code").value.trim();
    const result = await api("POST", "/signin", { user: state.signinUser, code: code });
    $("signin-code").value = "";
    if (result.status === 200) return signedIn(result.data);
    notify(errorText(result.data), "error");
  });

  $("sign-out").addEventListener("click", async () => {
    await api("DELETE", "/session");
    signedOut();
  });

  $("lang-switch").addEventListener("click", async () => {
    state.lang = state.lang === "ko" ? "en" : "ko";
    applyTexts();
    if (state.csrf) {
      await api("POST", "/lang", { lang: state.lang });
      render();
    }
  });

  // --- codes from the bot ------------------------------------------------------------------

  // Shows a code field in `slot`; `confirm(code)` makes the change with it.
  function askCode(slot, confirm) {
    slot.replaceChildren();
    const form = el("form", "code-form");
    form.noValidate = true;
    form.append(el("p", "help", t("code.sent")));
    const label = el("label");
    label.append(el("span", "", t("code.label")));
    const input = el("input");
    input.inputMode = "numeric";
    input.autocomplete = "one-time-code";
    input.maxLength = 6;
    input.className = "code-input";
    input.name = "code";
    label.append(input);
    const row = el("div", "row");
    const ok = el("button", "", t("code.confirm"));
    ok.type = "submit";
    const cancel = el("button", "secondary", t("code.cancel"));
    cancel.type = "button";
    cancel.addEventListener("click", () => slot.replaceChildren());
    row.append(ok, cancel);
    form.append(label, row);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const done = await confirm(input.value.trim());
      input.value = "";
      if (done) slot.replaceChildren();
    });
    slot.append(form);
    input.focus();
  }

  // One change confirmed by a code: first call sends the code, the second carries it.
  async function withCode(path, body, slot, onDone) {
    const first = await api("POST", path, body);
    if (first.status === 200 || (first.status === 202 && first.data.status !== "code_sent")) {
      return onDone(first.data);
    }
    if (first.status !== 202) return notify(errorText(first.data), "error");
    askCode(slot, async (code) => {
      const second = await api("POST", path, Object.assign({}, body, { code: code }));
      if (second.status === 200 || second.status === 202) {
        onDone(second.data);
        return true;
      }
      notify(errorText(second.data), "error");
      return ["code_void", "code_expired"].includes(second.data.code);
    });
  }

  // --- actions ---------------------------------------------------------------------------

  $("pause-toggle").addEventListener("click", async () => {
    const paused = !(state.overview && state.overview.user.paused);
    const result = await api("POST", "/pause", { paused: paused });
    if (result.status !== 200) return notify(errorText(result.data), "error");
    refresh();
  });

  $("mode-switch").addEventListener("click", () => {
    const current = state.overview ? state.overview.user.env : "paper";
    const target = current === "real" ? "paper" : "real";
    withCode("/mode", { env: target }, $("mode-code"), () => refresh());
  });

  $("rotate").addEventListener("click", () => {
    withCode("/webhook/rotate", {}, $("rotate-code"), () => {
      notify(t("webhook.rotated"), "info");
      refresh();
    });
  });

  function keysBody() {
    const form = $("keys-form");
    return {
      env: form.querySelector("input[name=env]:checked").value,
      app_key: $("key-app-key").value.trim(),
      app_secret: $("key-app-secret").value.trim(),
      account: $("key-account").value.trim(),
      hts_id: $("key-hts-id").value.trim(),
    };
  }

  $("keys-form").addEventListener("submit", (event) => {
    event.preventDefault();
    withCode("/keys", keysBody(), $("keys-code"), () => {
      // The secret leaves the page as soon as it is stored.
      $("keys-form").reset();
      notify(t("keys.saved"), "info");
      refresh();
    });
  });

  document.addEventListener("click", async (event) => {
    const target = event.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.dataset.copy) copy(target);
    if (target.dataset.recheck) {
      const result = await api("POST", "/keys/recheck", { env: target.dataset.recheck });
      if (result.status !== 202) return notify(errorText(result.data), "error");
      refresh();
    }
  });

  async function copy(button) {
    const source = $(button.dataset.copy);
    const text = source.textContent;
    let done = false;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        done = true;
      } catch (error) {
        done = false;
      }
    }
    if (!done) {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      done = document.execCommand("copy");
    }
    button.textContent = t(done ? "copied" : "copy");
    setTimeout(() => { button.textContent = t("copy"); }, 1500);
  }

  // --- reading and rendering ---------------------------------------------------------------

  let activity = { orders: [], alerts: [] };

  async function refresh() {
    clearTimeout(state.timer);
    const [overview, recent] = await Promise.all([
      api("GET", "/overview"), api("GET", "/activity"),
    ]);
    if (!state.csrf) return;
    if (overview.status === 200) state.overview = overview.data;
    if (recent.status === 200) activity = recent.data;
    if (overview.status === 0 || recent.status === 0) notify(t("error.network"), "error");
    render();
    schedule();
  }

  function schedule() {
    const seconds = (state.overview && state.overview.poll_seconds) || 3;
    const checking = state.overview && Object.values(state.overview.keys)
      .some((keys) => keys && keys.checks.checking);
    state.timer = setTimeout(() => {
      if (document.hidden) return schedule();
      refresh();
    }, (checking ? 1 : seconds) * 1000);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.csrf) refresh();
  });

  function envLabel(env) {
    return t(env === "real" ? "env.real" : "env.paper");
  }

  function render() {
    const overview = state.overview;
    if (!overview) return;
    const user = overview.user;
    const badge = $("env-badge");
    // Several accounts: the keys and switches here are the default account's; say so.
    const several = (overview.accounts || []).length > 1;
    badge.textContent = envLabel(user.env) + (several ? " · " + overview.account : "");
    badge.className = "badge " + user.env;
    show(badge, true);
    $("status-env").textContent = envLabel(user.env);
    $("status-paused").textContent = t(user.paused ? "status.paused_yes" : "status.paused_no");
    $("status-fill").textContent = fillText(overview.fill);
    $("pause-toggle").textContent = t(user.paused ? "action.resume" : "action.pause");
    $("mode-switch").textContent = t(user.env === "real" ? "action.switch_paper" : "action.switch_real");
    renderKeysets(overview.keys);
    $("webhook-url").textContent = overview.webhook.url;
    renderTemplates(overview.webhook.templates);
    renderOrders(activity.orders);
    renderAlerts(activity.alerts);
  }

  function fillText(fill) {
    if (fill.status === "ready") return t("fill.ready");
    if (fill.status === "failed") return t("fill.failed", { reason: fill.reason || "-" });
    if (fill.status === "connecting") return t("fill.connecting");
    return t("fill.stopped");
  }

  function renderKeysets(keys) {
    const box = $("keysets");
    box.replaceChildren();
    let any = false;
    for (const env of ["paper", "real"]) {
      const set = keys[env];
      if (!set) continue;
      any = true;
      const card = el("div", "keyset");
      card.id = "keyset-" + env;
      const head = el("div", "keyset-head");
      head.append(el("strong", "", envLabel(env)));
      head.append(el("span", set.validated ? "ok" : "bad",
        t(set.validated ? "keys.validated" : "keys.not_validated")));
      card.append(head);
      card.append(el("p", "muted", t("keys.stored", {
        app_key: set.app_key, account: set.account, hts_id: set.hts_id,
      })));
      card.append(renderChecklist(env, set.checks));
      const recheck = el("button", "secondary small", t("keys.recheck"));
      recheck.type = "button";
      recheck.dataset.recheck = env;
      recheck.disabled = set.checks.checking;
      card.append(recheck);
      box.append(card);
    }
    if (!any) box.append(el("p", "muted", t("keys.none")));
  }

  function checkText(name, item, env) {
    const other = envLabel(env === "real" ? "paper" : "real");
    switch (item.status) {
      case "ok": return t("check.ok");
      case "pending": return t("check.pending");
      case "other_env": return t("check.other_env", { other: other });
      case "invalid": return t("check.invalid");
      case "rate_limited": return t("check.rate_limited");
      case "temporary": return t("check.temporary");
      case "refused": return t(name === "account" ? "check.refused_account" : "check.refused_fill");
      case "timeout": return t("check.timeout");
      case "approval_failed": return t("check.approval_failed");
      default: return t("check.skipped");
    }
  }

  function renderChecklist(env, checks) {
    const list = el("ul", "checklist");
    list.id = "checklist-" + env;
    if (!checks.ran) return list;
    for (const item of checks.items) {
      const mark = item.status === "ok" ? "✓" : item.status === "pending" ? "…" : "✗";
      const row = el("li", "check " + item.status);
      row.dataset.check = item.name;
      row.dataset.status = item.status;
      row.append(el("span", "mark", mark));
      const body = el("span", "");
      body.append(el("strong", "", t("check." + item.name)));
      body.append(document.createTextNode(": " + checkText(item.name, item, env)));
      if (item.detail && item.status !== "ok") body.append(el("span", "detail", " (" + item.detail + ")"));
      row.append(body);
      list.append(row);
    }
    if (checks.interrupted) list.append(el("li", "check note", t("check.interrupted")));
    else if (!checks.checking) {
      list.append(el("li", "check summary", t(checks.ok ? "check.all_ok" : "check.some_failed")));
    }
    return list;
  }

  function renderTemplates(templates) {
    const box = $("templates");
    box.replaceChildren();
    templates.forEach((template, index) => {
      const key = "webhook.template." + template.name;
      const title = t(key) === key ? template.name : t(key);
      box.append(el("p", "label small", title));
      const wrap = el("div", "copyable");
      const code = el("code", "", template.body);
      code.id = "template-" + index;
      const button = el("button", "copy secondary", t("copy"));
      button.type = "button";
      button.dataset.copy = code.id;
      wrap.append(code, button);
      box.append(wrap);
    });
  }

  const clock = new Intl.DateTimeFormat("en-CA", {
    timeZone: "Asia/Seoul", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function when(iso) {
    if (!iso) return "";
    return clock.format(new Date(iso)).replace(",", "");
  }

  function amount(text) {
    const [whole, fraction] = String(text).split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return fraction ? grouped + "." + fraction : grouped;
  }

  function renderOrders(orders) {
    const list = $("orders-list");
    list.replaceChildren();
    if (!orders.length) return list.append(el("li", "muted", t("orders.empty")));
    for (const order of orders) {
      const row = el("li", "order " + order.status);
      row.dataset.orderId = order.id;
      row.dataset.symbol = order.symbol;
      row.dataset.status = order.status;
      const head = el("div", "line");
      head.append(el("span", "time", when(order.created_at)));
      if (order.account) head.append(el("span", "account", "[" + order.account + "]"));
      head.append(el("span", "side " + order.side, t("side." + order.side)));
      head.append(el("span", "stock", order.name ? order.name + " (" + order.symbol + ")" : order.symbol));
      head.append(el("span", "qty", t("orders.qty", { quantity: amount(order.quantity) })));
      head.append(el("span", "status", t("order_status." + order.status)));
      row.append(head);
      if (order.reason && ["rejected", "failed", "unknown"].includes(order.status)) {
        row.append(el("div", "reason", order.reason));
      }
      if (order.filled_qty > 0) {
        row.append(el("div", "fills", t("orders.fills", {
          filled: amount(order.filled_qty), quantity: amount(order.quantity),
          price: amount(order.avg_price),
        })));
      }
      for (const fill of order.fills) {
        row.append(el("div", "fill muted",
          when(fill.at) + " · " + amount(fill.quantity) + " @ " + amount(fill.price)));
      }
      list.append(row);
    }
  }

  function renderAlerts(alerts) {
    const list = $("alerts-list");
    list.replaceChildren();
    if (!alerts.length) return list.append(el("li", "muted", t("log.empty")));
    for (const alert of alerts) {
      const row = el("li", "alert " + alert.status);
      row.dataset.alertId = alert.id;
      row.dataset.status = alert.status;
      const head = el("div", "line");
      head.append(el("span", "time", when(alert.received_at)));
      if (alert.account) head.append(el("span", "account", "[" + alert.account + "]"));
      head.append(el("span", "summary", alert.summary));
      head.append(el("span", "status", t("alert_status." + alert.status)));
      row.append(head);
      if (alert.reason) row.append(el("div", "reason", alert.reason));
      list.append(row);
    }
  }

  start();
})();

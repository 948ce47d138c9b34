// Meridian's web UI: a small single-page app over the public /v1 HTTP API.
// Pages follow Consul's URLs (/ui/<dc>/services, /nodes, /kv/<prefix>);
// every page re-renders when a blocking query on what it shows returns a
// new index, so changes appear without polling or reloads.
"use strict";

const state = { localDc: null, dc: null, gen: 0, abort: null, filters: {} };

class ApiError extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

// Builds DOM nodes; text is always set as text (keys and outputs are user data).
function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") n.className = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    n.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return n;
}

function link(href, ...kids) {
  return el("a", { href, "data-link": true }, ...kids);
}

function enc(s) {
  return s.split("/").map(encodeURIComponent).join("/");
}

// One API call. `index` makes it a blocking query. A foreign datacenter
// gets ?dc=. Non-2xx answers throw ApiError with the agent's text.
async function api(path, opts = {}) {
  const url = new URL(path, location.origin);
  // A path that names its datacenter (the federation page) keeps it.
  if (state.dc && state.dc !== state.localDc && !url.searchParams.has("dc")) url.searchParams.set("dc", state.dc);
  if (opts.index) {
    url.searchParams.set("index", opts.index);
    url.searchParams.set("wait", "5m");
  }
  const headers = {};
  const token = aclToken();
  if (token) headers["X-Consul-Token"] = token;
  let resp;
  try {
    resp = await fetch(url, {
      method: opts.method || "GET",
      body: opts.body,
      headers,
      signal: opts.signal || (state.abort && state.abort.signal),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "The agent did not answer: " + e.message);
  }
  const text = await resp.text();
  const index = Number(resp.headers.get("X-Consul-Index") || 0);
  // Lists the token may not see all of come back shortened, with this.
  const filtered = resp.headers.get("X-Consul-Results-Filtered-By-ACLs") === "true";
  if (resp.status === 404 && opts.allow404) return { data: null, index, status: 404 };
  if (!resp.ok) throw new ApiError(resp.status, text.trim() || resp.statusText);
  let data = text;
  if ((resp.headers.get("Content-Type") || "").includes("json")) data = text ? JSON.parse(text) : null;
  return {
    data, index, status: resp.status, filtered,
    // A `?dc=*` read's per-datacenter indexes and failures.
    headers: resp.headers.get("X-Meridian-Datacenter-Index"),
    failed: (resp.headers.get("X-Meridian-Failed-Datacenters") || "").split(",").map((d) => d.trim()).filter(Boolean),
  };
}

// What to do about a refusal: which token was used, and where to set one.
function tokenHint() {
  return aclToken()
    ? "The ACL token set in this browser does not allow it."
    : "No ACL token is set, so the agent's default (or the anonymous) token was used: set a token at the top of the page.";
}

function errorBox(e) {
  // The agent's text says which permission and which rule or default decided.
  const what = e.status === 403 ? "Permission denied" : e.status ? `Error ${e.status}` : "Error";
  const text = e.status === 403 ? e.message.replace(/^Permission denied:\s*/, "") : e.message;
  return el("div", { class: "error", role: "alert" }, el("strong", {}, what + ": "), text,
    e.status === 403 ? el("p", { class: "hint" }, tokenHint()) : null);
}

// Shown above a list the ACLs shortened (Consul filters lists silently).
function aclFiltered(...answers) {
  if (!answers.some((a) => a && a.filtered)) return null;
  return el("div", { class: "notice acl-filtered", role: "status" },
    el("strong", {}, "Permission denied: "), "some results are hidden by ACLs. ", tokenHint());
}

function setMain(...nodes) {
  const main = document.getElementById("main");
  // replaceChildren would print a left-out (null) part as the text "null".
  main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
}

function b64decode(s) {
  if (!s) return "";
  const bin = atob(s);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function worst(checks) {
  if (checks.some((c) => c.Status === "critical")) return "critical";
  if (checks.some((c) => c.Status === "warning")) return "warning";
  return "passing";
}

function counts(checks) {
  const n = { passing: 0, warning: 0, critical: 0 };
  for (const c of checks) if (n[c.Status] !== undefined) n[c.Status]++;
  return n;
}

function healthBadges(checks) {
  const n = counts(checks);
  const out = [];
  for (const s of ["passing", "warning", "critical"]) {
    if (n[s]) out.push(el("span", { class: `badge ${s}`, title: `${n[s]} ${s}` }, `${n[s]} ${s}`));
  }
  return out.length ? out : [el("span", { class: "muted" }, "no checks")];
}

function tags(list) {
  return (list || []).map((t) => el("span", { class: "tag" }, t));
}

function filterBox(key, onInput) {
  const input = el("input", {
    type: "search",
    placeholder: "Filter…",
    "aria-label": "Filter",
    value: state.filters[key] || "",
    oninput: (e) => {
      state.filters[key] = e.target.value;
      onInput();
    },
  });
  return el("div", { class: "toolbar" }, input);
}

// Renders a page from `load()` (which returns its blocking-query paths and
// indexes), then re-renders whenever one of those queries sees a change,
// or (with `every`) after that many milliseconds at most, for what no
// blocking query covers (leaders, gossip, round trips).
async function live(gen, load, every) {
  let watched;
  try {
    watched = await load();
  } catch (e) {
    if (e.name === "AbortError" || gen !== state.gen) return;
    setMain(errorBox(e));
    // The error stays on the page until the API answers again (a leader
    // elected, a datacenter back): the page then draws itself.
    await new Promise((res) => setTimeout(res, 3000));
    if (gen === state.gen) live(gen, load, every);
    return;
  }
  const timer = every ? [new Promise((res) => setTimeout(res, every))] : [];
  await Promise.race([
    ...timer,
    ...watched.map(async ([path, index]) => {
      let current = index;
      for (;;) {
        if (gen !== state.gen) return;
        try {
          const r = await api(path, { index: current || 1, allow404: true });
          if (r.index !== current) return;
        } catch (e) {
          if (e.name === "AbortError") return;
          await new Promise((res) => setTimeout(res, 2000));
        }
      }
    }),
  ]);
  if (gen === state.gen) live(gen, load, every);
}

// ---- Pages ----

async function servicesPage(gen) {
  await live(gen, async () => {
    const svc = await api("/v1/catalog/services");
    const all = await api("/v1/health/state/any");
    const names = Object.keys(svc.data).sort();
    const details = await Promise.all(
      names.map((n) => api(`/v1/health/service/${enc(n)}`).then((r) => r.data))
    );
    if (gen !== state.gen) return [];
    const rows = names.map((name, i) => {
      const instances = details[i] || [];
      const checks = instances.flatMap((x) => x.Checks);
      return { name, tags: svc.data[name], instances, checks };
    });
    const body = el("tbody");
    const draw = () => {
      const f = (state.filters.services || "").toLowerCase();
      body.replaceChildren(
        ...rows
          .filter((r) => !f || r.name.toLowerCase().includes(f) || r.tags.some((t) => t.toLowerCase().includes(f)))
          .map((r) =>
            el("tr", { "data-service": r.name },
              el("td", {}, el("span", { class: `dot ${worst(r.checks)}` }), link(`/ui/${state.dc}/services/${enc(r.name)}`, r.name)),
              el("td", {}, healthBadges(r.checks)),
              el("td", {}, `${r.instances.length}`),
              el("td", { class: "opt" }, tags(r.tags))
            )
          )
      );
    };
    draw();
    setMain(
      el("h1", {}, "Services", el("span", { class: "muted" }, `${names.length}`)),
      aclFiltered(svc, all),
      filterBox("services", draw),
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "Service"), el("th", {}, "Health checks"), el("th", {}, "Instances"), el("th", { class: "opt" }, "Tags"))),
        body)
    );
    return [["/v1/catalog/services", svc.index], ["/v1/health/state/any", all.index]];
  });
}

function checkList(checks) {
  return el("div", {},
    ...checks.map((c) =>
      el("div", { class: "check", "data-check": c.CheckID, "data-status": c.Status },
        el("span", { class: `dot ${c.Status}` }),
        el("strong", {}, c.Name || c.CheckID), " ",
        c.Name && c.Name !== c.CheckID ? el("span", { class: "muted" }, `(${c.CheckID}) `) : null,
        el("span", { class: `status-${c.Status}` }, c.Status),
        c.Output ? el("pre", { class: "output" }, c.Output) : null
      )
    )
  );
}

async function servicePage(gen, name) {
  await live(gen, async () => {
    const r = await api(`/v1/health/service/${enc(name)}`);
    if (gen !== state.gen) return [];
    const body = el("tbody");
    const draw = () => {
      const f = (state.filters.instances || "").toLowerCase();
      body.replaceChildren(
        ...r.data
          .filter((x) => !f || x.Node.Node.toLowerCase().includes(f) || x.Service.ID.toLowerCase().includes(f))
          .map((x) =>
            el("tr", { "data-instance": x.Service.ID },
              el("td", {}, el("span", { class: `dot ${worst(x.Checks)}` }), x.Service.ID,
                el("div", { class: "muted" }, "on ", link(`/ui/${state.dc}/nodes/${enc(x.Node.Node)}`, x.Node.Node))),
              el("td", { class: "opt" }, `${x.Service.Address || x.Node.Address}:${x.Service.Port}`, el("div", {}, tags(x.Service.Tags))),
              el("td", {}, checkList(x.Checks))
            )
          )
      );
    };
    draw();
    const all = r.data.flatMap((x) => x.Checks);
    setMain(
      el("div", { class: "crumbs" }, link(`/ui/${state.dc}/services`, "Services"), " / "),
      el("h1", {}, name, healthBadges(all)),
      r.data.length === 0 ? el("p", { class: "muted" }, "No instances of this service are registered.") : null,
      filterBox("instances", draw),
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "Instance"), el("th", { class: "opt" }, "Address"), el("th", {}, "Checks"))),
        body)
    );
    return [[`/v1/health/service/${enc(name)}`, r.index]];
  });
}

async function nodesPage(gen) {
  await live(gen, async () => {
    const nodes = await api("/v1/catalog/nodes");
    const all = await api("/v1/health/state/any");
    if (gen !== state.gen) return [];
    const byNode = {};
    for (const c of all.data) (byNode[c.Node] = byNode[c.Node] || []).push(c);
    const body = el("tbody");
    const draw = () => {
      const f = (state.filters.nodes || "").toLowerCase();
      body.replaceChildren(
        ...nodes.data
          .filter((n) => !f || n.Node.toLowerCase().includes(f) || n.Address.includes(f))
          .map((n) => {
            const checks = byNode[n.Node] || [];
            return el("tr", { "data-node": n.Node },
              el("td", {}, el("span", { class: `dot ${worst(checks)}` }), link(`/ui/${state.dc}/nodes/${enc(n.Node)}`, n.Node)),
              el("td", {}, n.Address),
              el("td", {}, healthBadges(checks))
            );
          })
      );
    };
    draw();
    setMain(
      el("h1", {}, "Nodes", el("span", { class: "muted" }, `${nodes.data.length}`)),
      aclFiltered(nodes, all),
      filterBox("nodes", draw),
      el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "Node"), el("th", {}, "Address"), el("th", {}, "Health checks"))),
        body)
    );
    return [["/v1/catalog/nodes", nodes.index], ["/v1/health/state/any", all.index]];
  });
}

async function nodePage(gen, name) {
  await live(gen, async () => {
    const node = await api(`/v1/catalog/node/${enc(name)}`);
    const checks = await api(`/v1/health/node/${enc(name)}`);
    if (gen !== state.gen) return [];
    if (!node.data) {
      setMain(el("div", { class: "crumbs" }, link(`/ui/${state.dc}/nodes`, "Nodes"), " / "),
        errorBox(new ApiError(404, `Node "${name}" is not in the catalog of ${state.dc}`)));
      return [[`/v1/catalog/node/${enc(name)}`, node.index]];
    }
    const n = node.data.Node;
    const services = Object.values(node.data.Services || {});
    const nodeChecks = checks.data.filter((c) => !c.ServiceID);
    setMain(
      el("div", { class: "crumbs" }, link(`/ui/${state.dc}/nodes`, "Nodes"), " / "),
      el("h1", {}, n.Node, healthBadges(checks.data)),
      el("div", { class: "card" },
        el("div", {}, el("strong", {}, "Address: "), n.Address),
        el("div", {}, el("strong", {}, "Datacenter: "), n.Datacenter || state.dc),
        Object.keys(n.Meta || {}).length ? el("div", {}, el("strong", {}, "Meta: "), tags(Object.entries(n.Meta).map(([k, v]) => `${k}=${v}`))) : null
      ),
      el("h2", {}, "Node checks"),
      nodeChecks.length ? checkList(nodeChecks) : el("p", { class: "muted" }, "None."),
      el("h2", {}, "Services"),
      services.length
        ? el("table", {},
            el("thead", {}, el("tr", {}, el("th", {}, "Service"), el("th", {}, "Port"), el("th", { class: "opt" }, "Tags"), el("th", {}, "Checks"))),
            el("tbody", {},
              ...services.map((s) =>
                el("tr", { "data-service": s.ID },
                  el("td", {}, link(`/ui/${state.dc}/services/${enc(s.Service)}`, s.Service), el("div", { class: "muted" }, s.ID)),
                  el("td", {}, `${s.Port}`),
                  el("td", { class: "opt" }, tags(s.Tags)),
                  el("td", {}, checkList(checks.data.filter((c) => c.ServiceID === s.ID)))
                )
              )))
        : el("p", { class: "muted" }, "No services on this node.")
    );
    return [[`/v1/catalog/node/${enc(name)}`, node.index], [`/v1/health/node/${enc(name)}`, checks.index]];
  });
}

function kvCrumbs(path) {
  const parts = path.split("/").filter(Boolean);
  const out = [link(`/ui/${state.dc}/kv/`, "Key/Value")];
  let acc = "";
  for (const p of parts) {
    acc += p + "/";
    out.push(" / ", link(`/ui/${state.dc}/kv/${enc(acc)}`, p));
  }
  return el("div", { class: "crumbs" }, out);
}

async function kvListPage(gen, prefix) {
  await live(gen, async () => {
    const r = await api(`/v1/kv/${enc(prefix)}?keys&separator=/`, { allow404: true });
    if (gen !== state.gen) return [];
    const keys = (r.data || []).filter((k) => k !== prefix);
    const body = el("tbody");
    const draw = () => {
      const f = (state.filters.kv || "").toLowerCase();
      body.replaceChildren(
        ...keys
          .filter((k) => !f || k.toLowerCase().includes(f))
          .map((k) => {
            const label = k.slice(prefix.length);
            const folder = k.endsWith("/");
            return el("tr", { "data-key": k },
              el("td", { class: "kv-key" },
                folder ? link(`/ui/${state.dc}/kv/${enc(k)}`, "📁 " + label) : link(`/ui/${state.dc}/kv/${enc(k)}/edit`, label)),
              el("td", { class: "muted" }, folder ? "folder" : "key")
            );
          })
      );
    };
    draw();
    const form = el("form", { class: "card", id: "kv-create", onsubmit: createKey(prefix) },
      el("h2", { style: "margin-top:0" }, "Create a key"),
      el("div", { class: "toolbar" },
        el("span", { class: "kv-key muted" }, prefix || "/"),
        el("input", { type: "text", name: "key", required: true, placeholder: "key name (a trailing / makes a folder)", "aria-label": "Key name" })),
      el("textarea", { name: "value", placeholder: "value", "aria-label": "Value" }),
      el("div", { class: "toolbar", style: "margin-top:8px" }, el("button", { type: "submit" }, "Save")),
      el("div", { class: "result" })
    );
    setMain(
      kvCrumbs(prefix),
      el("h1", {}, prefix ? prefix : "Key/Value"),
      aclFiltered(r),
      filterBox("kv", draw),
      keys.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Key"), el("th", {}, "Kind"))), body)
        : el("p", { class: "muted" }, "No keys here yet."),
      el("div", { style: "height:16px" }),
      form
    );
    return [[`/v1/kv/${enc(prefix)}?keys&separator=/`, r.index]];
  });
}

function createKey(prefix) {
  return async (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const key = prefix + form.key.value.replace(/^\/+/, "");
    const result = form.querySelector(".result");
    try {
      // cas=0: only if the key does not exist yet.
      const r = await api(`/v1/kv/${enc(key)}?cas=0`, { method: "PUT", body: form.value.value });
      if (String(r.data).trim() !== "true") {
        result.replaceChildren(errorBox(new ApiError(409, `Key "${key}" already exists`)));
        return;
      }
      navigate(key.endsWith("/") ? `/ui/${state.dc}/kv/${enc(key)}` : `/ui/${state.dc}/kv/${enc(key)}/edit`);
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  };
}

async function kvEditPage(gen, key) {
  let r;
  try {
    r = await api(`/v1/kv/${enc(key)}`, { allow404: true });
  } catch (e) {
    if (e.name !== "AbortError") setMain(errorBox(e));
    return;
  }
  if (gen !== state.gen) return;
  const parent = key.includes("/") ? key.slice(0, key.lastIndexOf("/") + 1) : "";
  if (!r.data) {
    setMain(kvCrumbs(parent), errorBox(new ApiError(404, `Key "${key}" does not exist`)));
    return;
  }
  const entry = r.data[0];
  const result = el("div", { class: "result" });
  const meta = el("div", { class: "muted", id: "kv-meta" });
  let modifyIndex = entry.ModifyIndex;
  const showMeta = () =>
    meta.replaceChildren(`ModifyIndex ${modifyIndex} · Flags ${entry.Flags}` + (entry.Session ? ` · locked by session ${entry.Session}` : ""));
  showMeta();
  const value = el("textarea", { id: "kv-value", "aria-label": "Value" });
  value.value = b64decode(entry.Value);
  const conflict = () =>
    errorBox(new ApiError(409, "This key was changed by someone else since you opened it. Reload the page to see the current value before saving."));
  const save = async () => {
    try {
      const w = await api(`/v1/kv/${enc(key)}?cas=${modifyIndex}`, { method: "PUT", body: value.value });
      if (String(w.data).trim() !== "true") return result.replaceChildren(conflict());
      const now = await api(`/v1/kv/${enc(key)}`);
      modifyIndex = now.data[0].ModifyIndex;
      showMeta();
      result.replaceChildren(el("div", { class: "notice", role: "status" }, "Saved."));
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  };
  const del = async () => {
    if (!confirm(`Delete "${key}"?`)) return;
    try {
      const w = await api(`/v1/kv/${enc(key)}?cas=${modifyIndex}`, { method: "DELETE" });
      if (String(w.data).trim() !== "true") return result.replaceChildren(conflict());
      navigate(`/ui/${state.dc}/kv/${enc(parent)}`);
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  };
  setMain(
    kvCrumbs(parent),
    el("h1", { class: "kv-key" }, key),
    meta,
    el("div", { style: "height:8px" }),
    value,
    el("div", { class: "toolbar", style: "margin-top:8px" },
      el("button", { id: "kv-save", onclick: save }, "Save"),
      el("button", { id: "kv-delete", class: "danger", onclick: del }, "Delete")),
    result
  );
}

// ---- Federation (Meridian's own) ----

// The round trip two network coordinates estimate, in seconds (Serf's
// Vivaldi distance: Euclidean part, heights, then adjustments when they
// keep it positive).
function coordRtt(a, b) {
  const d = Math.sqrt(a.Vec.reduce((sum, x, i) => sum + (x - b.Vec[i]) ** 2, 0)) + a.Height + b.Height;
  const adjusted = d + a.Adjustment + b.Adjustment;
  return adjusted > 0 ? adjusted : d;
}

function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

function ms(seconds) {
  return seconds === null || seconds === undefined ? "–" : `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
}

// Every datacenter on one page: its leader, its servers as the WAN pool
// sees them, whether this server's probes reach it, round trips between
// datacenters from their servers' coordinates, and every service's health
// in every datacenter (one `?dc=*` read; each datacenter's own index is
// then watched with a blocking query).
async function federationPage(gen) {
  await live(gen, async () => {
    const dcs = (await api("/v1/catalog/datacenters")).data;
    const [health, members, coords, self] = await Promise.all([
      api("/v1/health/state/any?dc=*"),
      api("/v1/agent/members?wan=1").catch(() => ({ data: [] })),
      api("/v1/coordinate/datacenters").catch(() => ({ data: [] })),
      api("/v1/agent/self").catch(() => ({ data: {} })),
    ]);
    const leaders = await Promise.all(
      dcs.map((dc) => api(`/v1/status/leader?dc=${encodeURIComponent(dc)}`).then((r) => r.data, () => null))
    );
    if (gen !== state.gen) return [];
    const reach = {};
    for (const r of ((self.data.Meridian || {}).Datacenters || [])) reach[r.Datacenter] = r;
    const servers = {};
    for (const m of members.data) {
      const dc = (m.Tags || {}).dc;
      if (dc) (servers[dc] = servers[dc] || []).push(m);
    }
    const indexes = {};
    for (const part of (health.headers || "").split(",")) {
      const [dc, i] = part.trim().split("=");
      if (dc) indexes[dc] = Number(i);
    }
    const failed = new Set(health.failed);

    const dcRows = dcs.map((dc, i) => {
      const answer = health.data[dc];
      const down = failed.has(dc) || (reach[dc] && !reach[dc].Reachable);
      const checks = Array.isArray(answer) ? answer : [];
      const probe = reach[dc];
      return el("tr", { "data-dc": dc, "data-reachable": down ? "false" : "true" },
        el("td", {}, el("span", { class: `dot ${down ? "critical" : worst(checks)}` }),
          link(`/ui/${encodeURIComponent(dc)}/services`, dc), dc === state.localDc ? el("span", { class: "muted" }, " (this agent)") : null),
        el("td", { class: "leader" }, leaders[i] ? leaders[i] : el("span", { class: "status-critical" }, down ? "unreachable" : "no leader")),
        el("td", {}, ...(servers[dc] || []).map((m) =>
          el("div", { class: "server", "data-status": m.Status === 1 ? "alive" : "failed" },
            el("span", { class: `dot ${m.Status === 1 ? "passing" : "critical"}` }), m.Name.replace(/\.[^.]*$/, ""),
            el("span", { class: "muted" }, ` ${m.Addr}`)))),
        el("td", { class: "reach" }, dc === state.localDc ? el("span", { class: "muted" }, "local")
          : probe ? (probe.Reachable ? `answers, ${probe.RTTMs === null ? "–" : probe.RTTMs.toFixed(1) + " ms"}`
            : el("span", { class: "status-critical" }, `no answer for ${(probe.ForMs / 1000).toFixed(0)} s`))
          : el("span", { class: "muted" }, "not probed")),
        el("td", {}, failed.has(dc) ? el("span", { class: "status-critical" }, answer.Error) : healthBadges(checks))
      );
    });

    // Round trips between datacenters: the median over their servers' pairs.
    const byDc = {};
    for (const m of coords.data) byDc[m.Datacenter] = m.Coordinates || [];
    const rttHead = el("tr", {}, el("th", {}, ""), ...dcs.map((dc) => el("th", {}, dc)));
    const rttRows = dcs.map((a) =>
      el("tr", { "data-rtt-from": a }, el("th", {}, a), ...dcs.map((b) => {
        if (a === b) return el("td", { class: "muted" }, "–");
        const pairs = [];
        for (const x of byDc[a] || []) for (const y of byDc[b] || []) pairs.push(coordRtt(x.Coord, y.Coord));
        return el("td", { "data-rtt-to": b }, ms(median(pairs)));
      })));

    // Service health across datacenters.
    const services = {};
    for (const dc of dcs) {
      const answer = health.data[dc];
      if (!Array.isArray(answer)) continue;
      for (const c of answer) {
        const name = c.ServiceName || "(node checks)";
        ((services[name] = services[name] || {})[dc] = services[name][dc] || []).push(c);
      }
    }
    const names = Object.keys(services).sort();
    const svcRows = names.map((name) =>
      el("tr", { "data-service": name }, el("td", {}, name), ...dcs.map((dc) => {
        if (failed.has(dc)) return el("td", { class: "muted", "data-dc": dc }, "unknown");
        const checks = services[name][dc];
        return el("td", { "data-dc": dc }, checks ? healthBadges(checks) : el("span", { class: "muted" }, "–"));
      })));

    setMain(
      el("h1", {}, "Federation", el("span", { class: "muted" }, `${dcs.length} datacenters`)),
      aclFiltered(health),
      el("table", { id: "fed-dcs" },
        el("thead", {}, el("tr", {}, el("th", {}, "Datacenter"), el("th", {}, "Leader"), el("th", {}, "Servers"),
          el("th", {}, "From this server"), el("th", {}, "Health checks"))),
        el("tbody", {}, ...dcRows)),
      el("h2", {}, "Round trips between datacenters"),
      el("p", { class: "muted" }, "Estimated from the servers' network coordinates (median over server pairs)."),
      el("table", { id: "fed-rtt" }, el("thead", {}, rttHead), el("tbody", {}, ...rttRows)),
      el("h2", {}, "Services in every datacenter"),
      el("table", { id: "fed-services" },
        el("thead", {}, el("tr", {}, el("th", {}, "Service"), ...dcs.map((dc) => el("th", {}, dc)))),
        el("tbody", {}, ...svcRows))
    );
    // Each answering datacenter's health, watched where it lives.
    return dcs.filter((dc) => indexes[dc]).map((dc) => [`/v1/health/state/any?dc=${encodeURIComponent(dc)}`, indexes[dc]]);
  }, 5000);
}

// ---- Routing ----

function parse(path) {
  const m = path.match(/^\/ui\/([^/]+)\/(services|nodes|kv|federation)(?:\/(.*))?$/);
  if (!m) return null;
  return { dc: decodeURIComponent(m[1]), section: m[2], rest: m[3] ? decodeURIComponent(m[3]) : "" };
}

function navigate(path) {
  history.pushState(null, "", path);
  route();
}

async function loadDcs() {
  const sel = document.getElementById("dc-switch");
  try {
    const r = await api("/v1/catalog/datacenters", { signal: new AbortController().signal });
    const dcs = r.data.includes(state.dc) ? r.data : [...r.data, state.dc];
    sel.replaceChildren(...dcs.map((d) => el("option", { value: d, selected: d === state.dc }, d)));
  } catch (e) {
    sel.replaceChildren(el("option", { value: state.dc }, state.dc));
  }
}

async function route() {
  if (state.abort) state.abort.abort();
  state.abort = new AbortController();
  const gen = ++state.gen;
  const p = parse(location.pathname);
  if (!p) {
    history.replaceState(null, "", `/ui/${encodeURIComponent(state.localDc)}/services`);
    return route();
  }
  const dcChanged = state.dc !== p.dc;
  state.dc = p.dc;
  if (dcChanged) loadDcs();
  document.title = `${p.section === "kv" ? "Key/Value" : p.section[0].toUpperCase() + p.section.slice(1)} - ${p.dc} - Meridian`;
  for (const a of document.querySelectorAll("#nav a")) {
    a.href = `/ui/${encodeURIComponent(p.dc)}/${a.dataset.section}`;
    a.classList.toggle("active", a.dataset.section === p.section);
  }
  setMain(el("p", { class: "muted" }, "Loading…"));
  if (p.section === "federation") return federationPage(gen);
  if (p.section === "services") return p.rest ? servicePage(gen, p.rest) : servicesPage(gen);
  if (p.section === "nodes") return p.rest ? nodePage(gen, p.rest) : nodesPage(gen);
  if (p.rest.endsWith("/edit")) return kvEditPage(gen, p.rest.slice(0, -"/edit".length));
  return kvListPage(gen, p.rest && !p.rest.endsWith("/") ? p.rest + "/" : p.rest);
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-link]");
  if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", route);
document.getElementById("dc-switch").addEventListener("change", (ev) => {
  const p = parse(location.pathname);
  navigate(`/ui/${encodeURIComponent(ev.target.value)}/${p ? p.section : "services"}`);
});

// This agent's datacenter (reading it needs agent:read: without a token
// that allows it, Consul's default name), then the page.
async function start() {
  try {
    const self = await api("/v1/agent/self", { signal: new AbortController().signal });
    state.localDc = self.data.Config.Datacenter;
  } catch (e) {
    state.localDc = state.localDc || "dc1";
  }
  route();
}

// A new token may see more (or less): draw everything again with it.
onTokenChange(() => {
  state.dc = null;
  start();
});
start();

#!/usr/bin/env python3
"""Writes training/extra_labelled.csv and training/holdout_eval.csv.

Every line is produced from the templates below, written by hand for logsieve: they imitate the
*formats* of common software (nginx, sshd, kernel, systemd, PostgreSQL, ...) but no line is copied
from a third-party log collection. Placeholders (`<<ip>>`, `<<n:1-99>>`, `<<a|b|c>>`, ...) are
filled from a seeded random generator, so the output is the same on every run:

    python3 training/make_extra.py

Template syntax, one per line in the blocks below:

    SOURCE [~sys|~app] ¦ TEMPLATE

- SOURCE: a system name, `a|b|c` (one picked at random), or `@app` (an application name).
- `~sys` puts a random syslog-style prefix (or none) before the line; `~app` an application-log
  prefix (timestamp and maybe a level-free thread/host part) or none.
- `<<name>>` placeholders are listed in FILL; `<<n:A-B>>` is an integer in [A, B]; `<<f:A-B>>` a
  float with 1 decimal; `<<hex:N>>` N hex digits; `<<a|b|c>>` one of the options.

Each template is one *shape*. The training file uses every training template once and some twice
(with other values); the hold-out file uses a separate set of templates (other formats and
phrasings), each once. Lines whose label could be argued are left out on purpose.
"""

import csv
import random
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

RNG = random.Random(20250314)

APPS = [
    "ModernCRM", "ModernHR", "BillingSystem", "AnalyticsEngine", "ThirdPartyAPI",
    "billing-api", "orders-service", "inventory-svc", "crm-web", "hr-portal",
    "payments-gateway", "notification-service", "reporting-worker", "checkout",
    "data-pipeline", "search-api", "customer-portal", "ledger-service",
]
HOSTS = [
    "web-01", "web-03", "web-07", "api-2", "api-prod-4", "db-prod-1", "db-replica-2",
    "ip-10-0-3-17", "ip-172-31-44-201", "node-pool-a-3", "k8s-worker-4", "mq-1", "cache-02",
    "lb-edge-1", "build-7", "app-server-12", "fs01", "bastion", "mail-1", "etl-03",
]
USERS = [
    "alice", "bob.k", "jdoe", "m.garcia", "priya.n", "tkowalski", "lchen", "sofia.r",
    "ahmed.h", "kim.park", "o.petrov", "rachel", "dnguyen", "e.schmidt", "marta.l", "wliu",
]
BADUSERS = ["admin", "test", "oracle", "ubuntu", "postgres", "user1", "git", "ftpuser",
            "support", "pi", "guest", "deploy", "www", "hadoop", "nagios"]
DOMAINS = ["example.com", "acme.example", "corp.example.org", "shop.example.net"]
PATHS = [
    "/api/v1/orders", "/api/v1/orders/<<n:1000-99999>>", "/products/blue-running-shoes",
    "/static/js/app.<<hex:8>>.js", "/login", "/healthz", "/metrics", "/v2/cart/items",
    "/images/banner-spring.webp", "/search?q=winter+jacket&page=<<n:1-9>>",
    "/api/users/<<n:1-9999>>/avatar", "/favicon.ico", "/robots.txt", "/graphql",
    "/docs/getting-started", "/api/v2/invoices?status=open", "/assets/css/main.css",
    "/checkout/confirm", "/api/v1/customers/<<n:1-99999>>", "/sitemap.xml",
    "/api/reports/monthly.csv", "/blog/2025/03/release-notes", "/ws/notifications",
]
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "curl/8.5.0", "python-requests/2.31.0", "Go-http-client/1.1", "okhttp/4.12.0",
    "kube-probe/1.29", "Prometheus/2.51.0", "Apache-HttpClient/4.5.14 (Java/17.0.10)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
STATUS = [200] * 12 + [201, 204, 301, 302, 304, 304, 400, 404, 404, 409, 422, 500, 502, 503]
NAMESPACES = ["prod", "staging", "payments", "default", "monitoring", "team-a", "data"]
PODS = ["checkout", "api", "web", "worker", "cart", "search", "billing", "auth-proxy"]
START = datetime(2024, 9, 1)


def _dt():
    return START + timedelta(seconds=RNG.randrange(0, 200 * 86400))


def _ip():
    first = RNG.choice([23, 31, 45, 51, 62, 77, 81, 89, 91, 103, 109, 112, 118, 141, 146, 154,
                        159, 165, 178, 185, 188, 193, 194, 203, 212, 217])
    return f"{first}.{RNG.randrange(1, 255)}.{RNG.randrange(0, 255)}.{RNG.randrange(1, 254)}"


def _pip():
    kind = RNG.randrange(3)
    if kind == 0:
        return f"10.{RNG.randrange(0, 30)}.{RNG.randrange(0, 255)}.{RNG.randrange(2, 254)}"
    if kind == 1:
        return f"192.168.{RNG.randrange(0, 20)}.{RNG.randrange(2, 254)}"
    return f"172.{RNG.randrange(16, 32)}.{RNG.randrange(0, 255)}.{RNG.randrange(2, 254)}"


def _hex(n):
    return "".join(RNG.choice("0123456789abcdef") for _ in range(n))


def _uuid():
    return f"{_hex(8)}-{_hex(4)}-4{_hex(3)}-{RNG.choice('89ab')}{_hex(3)}-{_hex(12)}"


FILL = {
    "ts": lambda: _dt().strftime("%Y-%m-%d %H:%M:%S"),
    "tsms": lambda: _dt().strftime("%Y-%m-%d %H:%M:%S") + f",{RNG.randrange(1000):03d}",
    "isots": lambda: _dt().strftime("%Y-%m-%dT%H:%M:%S") + f".{RNG.randrange(1000):03d}Z",
    "syslog": lambda: (lambda d: f"{d:%b} {d.day:2d} {d:%H:%M:%S}")(_dt()),
    "apachets": lambda: (lambda d: f"{d:%a %b %d %H:%M:%S}.{RNG.randrange(10**6):06d} {d:%Y}")(_dt()),
    "connid": lambda: "0HN" + "".join(RNG.choice("0123456789ABCDEFGHIJKLMNOPQRSTUV") for _ in range(10)),
    "clfms": lambda: _dt().strftime("%d/%b/%Y:%H:%M:%S") + f".{RNG.randrange(1000):03d}",
    "ctime": lambda: _dt().strftime("%a %b %d %H:%M:%S %Y"),
    "ws": lambda: f"WS-0{RNG.randint(100, 999)}",
    "ngxdate": lambda: _dt().strftime("%Y/%m/%d %H:%M:%S"),
    "klog": lambda: _dt().strftime("%m%d %H:%M:%S") + f".{RNG.randrange(10**6):06d}",
    "yymmdd": lambda: _dt().strftime("%y%m%d %H:%M:%S"),
    "gindate": lambda: _dt().strftime("%Y/%m/%d - %H:%M:%S"),
    "redisdate": lambda: _dt().strftime("%d %b %Y %H:%M:%S") + f".{RNG.randrange(1000):03d}",
    "clf": lambda: _dt().strftime("%d/%b/%Y:%H:%M:%S +0000"),
    "wz": lambda: _dt().strftime("%d/%b/%Y %H:%M:%S"),
    "date": lambda: _dt().strftime("%Y-%m-%d"),
    "time": lambda: _dt().strftime("%H:%M:%S"),
    "epoch": lambda: str(int(_dt().timestamp())),
    "epochms": lambda: str(int(_dt().timestamp() * 1000) + RNG.randrange(1000)),
    "host": lambda: RNG.choice(HOSTS),
    "ip": _ip,
    "pip": _pip,
    "pid": lambda: str(RNG.randrange(300, 65000)),
    "port": lambda: str(RNG.randrange(1025, 65535)),
    "user": lambda: RNG.choice(USERS),
    "baduser": lambda: RNG.choice(BADUSERS),
    "email": lambda: f"{RNG.choice(USERS)}@{RNG.choice(DOMAINS)}",
    "uuid": _uuid,
    "path": lambda: RNG.choice(PATHS),
    "ua": lambda: RNG.choice(UAS),
    "st": lambda: str(RNG.choice(STATUS)),
    "bytes": lambda: str(RNG.choice([RNG.randrange(0, 900), RNG.randrange(900, 60000)])),
    "ms": lambda: f"{RNG.uniform(0.3, 900):.3f}",
    "sec": lambda: f"{RNG.uniform(0.001, 2.5):.3f}",
    "pod": lambda: f"{RNG.choice(PODS)}-{_hex(9)}-{_hex(5)}",
    "ns": lambda: RNG.choice(NAMESPACES),
    "ver": lambda: f"{RNG.randrange(1, 9)}.{RNG.randrange(0, 30)}.{RNG.randrange(0, 20)}",
    "app": lambda: RNG.choice(APPS),
    "b64": lambda: "".join(RNG.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43)),
}

# Computed placeholders: figures that have to agree with each other within one line.
def _df():
    size = RNG.choice([100, 200, 500, 1000])
    used = RNG.randint(size // 10, size - 5)
    return f"size {size}G used {used}G avail {size - used}G use% {round(100 * used / size)}%"


def _top():
    total, running = RNG.randint(150, 600), RNG.randint(1, 9)
    us, sy, wa = RNG.uniform(1, 60), RNG.uniform(0.5, 9), RNG.uniform(0, 3)
    used = RNG.uniform(2000, 13000)
    free = RNG.uniform(200, 15876.2 - used - 100)
    return (f"Tasks: {total} total,   {running} running, {total - running} sleeping; %Cpu(s): {us:.1f} us, "
            f"{sy:.1f} sy, {100 - us - sy - wa:.1f} id, {wa:.1f} wa; MiB Mem : 15876.2 total, {free:.1f} free, {used:.1f} used")


def _mem():
    used, shared = RNG.randint(2000, 13000), RNG.randint(10, 900)
    cache = RNG.randint(300, 16384 - used - 100)
    free = 16384 - used - cache
    return (f"Mem: total=16384MB used={used}MB free={free}MB shared={shared}MB buff/cache={cache}MB "
            f"available={free + cache - shared}MB")


def _dockermem():
    used = RNG.uniform(40, 2000)
    return f"mem={used:.1f}MiB/2GiB ({100 * used / 2048:.2f}%)"


def _net():
    rx, tx = RNG.uniform(5, 950), RNG.uniform(5, 950)
    return f"rx {rx:.1f} Mbit/s tx {tx:.1f} Mbit/s (utilisation {round(max(rx, tx) / 10)}% of 1 Gbit/s)"


def _jsmem():
    used = RNG.randint(20, 500)
    total = used + RNG.randint(5, 200)
    return f"rss={total + RNG.randint(30, 300)}MB heapTotal={total}MB heapUsed={used}MB external={RNG.randint(1, 90)}MB"


def _gomem():
    alloc = RNG.randint(5, 800)
    return f"heap_alloc={alloc}MB heap_sys={alloc + RNG.randint(10, 300)}MB"


def _heap():
    used = RNG.uniform(0.2, 3.8)
    committed = min(4.0, used + RNG.uniform(0.1, 1.0))
    return f"used={used:.1f}GB committed={committed:.1f}GB max=4.0GB ({round(100 * used / 4)}%)"


def _redismem():
    used = RNG.randint(50_000_000, 2_000_000_000)
    peak = used + RNG.randint(0, 2_100_000_000 - used)
    return (f"used_memory:{used} used_memory_human:{used / 2**30:.2f}G used_memory_peak_human:{peak / 2**30:.2f}G "
            f"maxmemory_human:2.00G mem_fragmentation_ratio:{RNG.uniform(1.0, 1.6):.2f}")


def _inode():
    used = RNG.randint(20_000, 3_200_000)
    return f"{used:,} of 3,276,800 ({round(100 * used / 3_276_800)}%)"


def _hikari():
    total = RNG.randint(10, 20)
    active = RNG.randint(0, total)
    return f"total={total}, active={active}, idle={total - active}, waiting={RNG.randint(0, 3) if active == total else 0}"


def _stub():
    accepted = RNG.randint(100_000, 99_000_000)
    reading, writing, waiting = RNG.randint(0, 20), RNG.randint(1, 300), RNG.randint(1, 300)
    return (f"Active connections: {reading + writing + waiting} server accepts handled requests {accepted} {accepted} "
            f"{accepted * RNG.randint(2, 9)} Reading: {reading} Writing: {writing} Waiting: {waiting}")


def _tomcat():
    count = RNG.randint(10, 200)
    return f"currentThreadsBusy={RNG.randint(1, count)} maxThreads=200 currentThreadCount={count}"


def _fpm():
    active, idle = RNG.randint(1, 40), RNG.randint(0, 20)
    return f"active processes {active}, idle processes {idle}, max children reached {RNG.randint(0, 5)}, total processes {active + idle}"


def _lambda():
    duration = RNG.uniform(1, 900)
    return f"Duration: {duration:.2f} ms\tBilled Duration: {int(duration) + 1} ms\tMemory Size: 512 MB\tMax Memory Used: {RNG.randint(60, 500)} MB"


def _zfs():
    alloc = RNG.uniform(1, 20.5)
    return f"size 21.8T alloc {alloc:.1f}T free {21.8 - alloc:.1f}T cap {round(100 * alloc / 21.8)}% frag {RNG.randint(1, 40)}%"


def _ofvms():
    total = RNG.randint(5, 40)
    return f"{total} of {total} VMs processed"


FILL.update({
    "df": _df, "top": _top, "mem": _mem, "dockermem": _dockermem, "net": _net, "jsmem": _jsmem,
    "gomem": _gomem, "heap": _heap, "redismem": _redismem, "inode": _inode, "hikari": _hikari,
    "stub": _stub, "tomcat": _tomcat, "fpm": _fpm, "lambda": _lambda, "zfs": _zfs, "ofvms": _ofvms,
    "uid": lambda: str(RNG.randint(1001, 1999)),
})


PLACEHOLDER = re.compile(r"<<([^<>]+)>>")
# Within one line these repeat the same value (a second, different one: `<<ip2>>`, `<<user2>>`, ...).
STICKY = {"user", "ip", "pip", "email", "pid", "st", "host", "date", "connid", "uid", "ws"}


def fill(template, ctx=None):
    ctx = {} if ctx is None else ctx

    def one(m):
        body = m.group(1)
        if "|" in body:
            return fill(RNG.choice(body.split("|")), ctx)
        if body.startswith("n:"):
            lo, hi = body[2:].split("-")
            return str(RNG.randint(int(lo), int(hi)))
        if body.startswith("f:"):
            lo, hi = body[2:].split("-")
            return f"{RNG.uniform(float(lo), float(hi)):.1f}"
        if body.startswith("hex:"):
            return _hex(int(body[4:]))
        base = body[:-1] if body[-1] == "2" and body[:-1] in STICKY else body
        if base in STICKY:
            if body not in ctx:
                value = fill(FILL[base](), ctx)
                while body != base and value == ctx.get(base):
                    value = fill(FILL[base](), ctx)
                ctx[body] = value
            return ctx[body]
        # Placeholders may expand to text with placeholders (PATHS).
        return fill(FILL[body](), ctx)

    return PLACEHOLDER.sub(one, template)


def sys_prefix(program_host=True):
    kind = RNG.randrange(4)
    if kind == 0:
        return ""
    if kind == 1:
        return f"{FILL['syslog']()} {FILL['host']()} "
    if kind == 2:
        return _dt().strftime("%Y-%m-%dT%H:%M:%S") + f".{RNG.randrange(10**6):06d}+00:00 {FILL['host']()} "
    return f"{FILL['syslog']()} {FILL['host']()} "


def app_prefix():
    kind = RNG.randrange(4)
    if kind == 0:
        return ""
    if kind == 1:
        return FILL["ts"]() + " "
    if kind == 2:
        return "[" + FILL["isots"]() + "] "
    return FILL["tsms"]() + " "


def parse(block):
    out = []
    for raw in block.strip("\n").split("\n"):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        left, template = raw.split(" ¦ ", 1)
        parts = left.split()
        out.append((parts[0], parts[1:], template.strip()))
    return out


def render(entry):
    source_spec, flags, template = entry
    if source_spec == "@app":
        source = RNG.choice(APPS)
    else:
        source = RNG.choice(source_spec.split("|"))
    message = fill(template, {})
    if "~sys" in flags:
        message = sys_prefix() + message
    elif "~app" in flags:
        message = app_prefix() + message
    return source, message


# --------------------------------------------------------------------------------------------
# HTTP Status
# --------------------------------------------------------------------------------------------
HTTP_TRAIN = r"""
nginx ¦ <<ip>> - - [<<clf>>] "<<GET|GET|POST|HEAD>> <<path>> HTTP/1.1" <<st>> <<bytes>> "-" "<<ua>>"
nginx ¦ <<ip>> - <<user>> [<<clf>>] "POST /api/v1/orders HTTP/2.0" 201 <<bytes>> "https://shop.example.com/cart" "<<ua>>" rt=<<sec>> uct="0.000" uht="<<sec>>" urt="<<sec>>"
apache|httpd ¦ <<pip>> - - [<<clf>>] "GET /index.html HTTP/1.1" 200 <<bytes>>
apache|httpd ¦ <<ip>> - - [<<clf>>] "GET /images/logo-old.png HTTP/1.1" 404 196 "https://www.example.org/" "<<ua>>"
apache ¦ www.example.com:443 <<ip>> - - [<<clf>>] "GET /blog/feed/ HTTP/1.1" 304 - "-" "Feedly/1.0 (+http://www.feedly.com/fetcher.html)"
nginx ¦ {"time":"<<isots>>","remote_addr":"<<ip>>","request":"GET <<path>> HTTP/1.1","status":<<st>>,"body_bytes_sent":<<bytes>>,"request_time":<<sec>>,"http_user_agent":"<<ua>>"}
uvicorn ¦ INFO:     <<pip>>:<<port>> - "GET /api/items/<<n:1-9999>> HTTP/1.1" 200 OK
uvicorn|fastapi ¦ INFO:     <<pip>>:<<port>> - "POST /predict HTTP/1.1" <<500 Internal Server Error|422 Unprocessable Entity|200 OK>>
express ¦ <<POST|GET|DELETE>> /api/session/<<n:1-999>> <<200|204|302|404>> - - <<ms>> ms
rails ¦ Completed <<200 OK|302 Found|404 Not Found|422 Unprocessable Entity>> in <<n:3-900>>ms (Views: <<f:0-90>>ms | ActiveRecord: <<f:0-60>>ms | Allocations: <<n:1000-90000>>)
django ¦ [<<wz>>] "GET /admin/<<|login/|orders/order/>> HTTP/1.1" <<200|302|301>> <<bytes>>
go-api ¦ <<ts>> http: <<pip>>:<<port>> <<GET|PUT|POST>> /v1/devices/<<n:1-9999>> <<st>> <<n:40-990>>µs
pino|node-api ¦ {"level":30,"time":<<epochms>>,"pid":<<pid>>,"hostname":"<<host>>","req":{"id":<<n:1-99999>>,"method":"GET","url":"/api/cart"},"res":{"statusCode":<<st>>},"responseTime":<<n:1-400>>,"msg":"request completed"}
envoy|istio-proxy ¦ [<<isots>>] "GET /api/v2/catalog?limit=<<n:10-100>> HTTP/1.1" <<st>> - via_upstream - "-" 0 <<bytes>> <<n:1-300>> <<n:1-300>> "<<ip>>" "<<ua>>" "<<uuid>>" "catalog.prod.svc.cluster.local:8080" "<<pip>>:8080"
traefik ¦ <<ip>> - - [<<clf>>] "GET /dashboard/ HTTP/2.0" 200 <<bytes>> "-" "-" <<n:1-9999>> "dashboard@internal" "-" <<n:0-40>>ms
@app ¦ GET /api/v3/invoices/<<n:100-9999>> returned status <<st>> in <<sec>>s
@app ¦ Request POST /v1/tokens completed with HTTP <<200|201|400>>
@app ¦ HTTP <<404 Not Found|410 Gone>> for GET /reports/<<n:1-9999>>.pdf
@app ¦ Response status <<503 Service Unavailable|502 Bad Gateway|504 Gateway Timeout>> sent for GET /search?q=<<n:1-999>>
cinder-api ¦ cinder.api.openstack.wsgi [req-<<uuid>> <<hex:32>> <<hex:32>> - - -] http://<<pip>>:8776/v3/<<hex:32>>/volumes/detail returned with HTTP <<200|202|404>>
neutron-server ¦ neutron.wsgi [req-<<uuid>> <<hex:32>> <<hex:32>> - - -] <<pip>> "GET /v2.0/ports?device_id=<<uuid>> HTTP/1.1" status: <<200|200|404>>  len: <<n:200-4000>> time: 0.<<n:1000000-9999999>>
glance-api ¦ glance.api.v2 [req-<<uuid>>] <<pip>> - - [<<clf>>] "GET /v2/images?limit=20 HTTP/1.1" 200 <<bytes>> 0.<<n:100000-999999>>
kube-apiserver ¦ I<<klog>>       1 httplog.go:132] "HTTP" verb="<<GET|LIST|WATCH|PATCH>>" URI="/api/v1/namespaces/<<ns>>/pods?limit=500" latency="<<f:0-90>>ms" userAgent="kubectl/v1.29.2 (linux/amd64)" audit-ID="<<uuid>>" srcIP="<<pip>>:<<port>>" resp=<<200|200|404|409>>
reporting-worker|billing-api ¦ urllib3.connectionpool - DEBUG - https://api.partner.example:443 "GET /v1/rates?base=EUR HTTP/1.1" <<200|200|404|500>> None
nginx ¦ client=<<ip>> method=<<GET|POST>> uri=/api/search status=<<st>> bytes=<<bytes>> upstream=<<pip>>:8080 rt=<<sec>>
kestrel|dotnet-api ¦ info: Microsoft.AspNetCore.Hosting.Diagnostics[2] Request finished HTTP/1.1 GET http://localhost:5000/api/weather - <<st>> - application/json;+charset=utf-8 <<ms>>ms
flask|werkzeug ¦ <<pip>> - - [<<wz>>] "GET /static/app.js HTTP/1.1" <<304|200>> -
ingress-nginx ¦ <<ip>> - - [<<clf>>] "GET /api/cart HTTP/2.0" <<st>> <<bytes>> "-" "<<ua>>" <<n:20-800>> <<sec>> [shop-cart-8080] [] <<pip>>:8080 <<bytes>> <<sec>> <<st>> <<hex:32>>
spring-app ¦ <<tsms>> DEBUG <<n:1-9>> --- [nio-8080-exec-<<n:1-20>>] o.s.web.servlet.DispatcherServlet        : Completed <<200 OK|404 NOT_FOUND|201 CREATED|400 BAD_REQUEST>>
squid ¦ <<epoch>>.<<n:100-999>>    <<n:1-900>> <<pip>> TCP_<<MISS|HIT|REFRESH_MODIFIED>>/<<200|304|404>> <<bytes>> GET http://deb.debian.org/debian/dists/bookworm/InRelease - HIER_DIRECT/<<ip>> text/plain
api-gateway ¦ route=/billing/invoices method=<<GET|POST>> upstream_status=<<st>> status=<<st>> latency_ms=<<n:3-900>> client_ip=<<ip>>
@app ¦ Served GET /docs/index.html with status 200 (<<f:1-90>> KB) to <<ip>>
@app ¦ status=<<st>> method=<<GET|PATCH|DELETE>> path=/api/v1/users/<<n:1-9999>> duration=<<n:1-900>>ms client=<<pip>>
gin|gateway ¦ [GIN] <<gindate>> | <<st>> | <<f:0-90>>ms | <<pip>> | <<GET|POST>>      "/api/<<ping|v1/products|v1/cart>>"
actix|rust-api ¦ [<<isots>> INFO  actix_web::middleware::logger] <<pip>> "GET /health HTTP/1.1" 200 2 "-" "curl/8.5.0" 0.000<<n:100-999>>
axum|rust-api ¦ INFO request{method=<<GET|POST>> uri=/api/items version=HTTP/1.1}: tower_http::trace::on_response: finished processing request latency=<<n:0-300>> ms status=<<st>>
phoenix ¦ [info] Sent <<st>> in <<n:1-900>>ms
tornado|jupyter ¦ [I <<yymmdd>> web:2348] <<st>> GET /api/status (<<pip>>) <<f:0-90>>ms
api-gateway ¦ {"requestId":"<<uuid>>","ip":"<<ip>>","requestTime":"<<clf>>","httpMethod":"GET","resourcePath":"/orders/{id}","status":"<<st>>","protocol":"HTTP/1.1","responseLength":"<<bytes>>"}
tomcat ¦ <<pip>> - - [<<clf>>] "POST /app/rest/session HTTP/1.1" <<200|401>> <<n:0-900>> <<n:1-400>>
nginx ¦ <<ip>> - - [<<clf>>] "GET / HTTP/1.1" 301 162 "-" "<<ua>>"
@app ¦ Status code <<st>> returned for GET /v1/accounts/<<n:1000-9999>>/balance, len <<n:40-900>>, time <<sec>>
@app ¦ HTTP/1.1 <<200 OK|204 No Content|304 Not Modified>> returned for <<GET|HEAD>> /status in <<n:1-90>>ms
@app ¦ Responded <<404|200>> to HEAD /favicon.ico
@app ¦ GET /v2/servers/<<uuid>> -> <<200|404>> (<<n:100-4000>> bytes, <<sec>>s)
"""

HTTP_HOLDOUT = r"""
haproxy ¦ haproxy[<<pid>>]: <<ip>>:<<port>> [<<clfms>>] fe_https~ be_api/api-<<n:1-4>> 0/0/1/<<n:2-90>>/<<n:3-95>> <<st>> <<bytes>> - - ---- <<n:1-900>>/<<n:1-900>>/<<n:0-30>>/<<n:0-9>>/0 0/0 "GET /v1/catalog/items HTTP/1.1"
iis ¦ <<date>> <<time>> <<pip>> GET /default.aspx - 443 - <<ip>> Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) - <<st>> 0 0 <<n:1-900>>
caddy ¦ {"level":"info","ts":<<epoch>>.<<n:1000-9999>>,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"<<ip>>","proto":"HTTP/2.0","method":"GET","host":"example.com","uri":"/about"},"bytes_read":0,"duration":0.00<<n:1000-9999>>,"size":<<bytes>>,"status":<<st>>}
aws-alb ¦ https <<isots>> app/prod-alb/<<hex:16>> <<ip>>:<<port>> <<pip>>:80 0.001 0.0<<n:10-99>> 0.000 <<st>> <<st>> <<n:100-900>> <<bytes>> "GET https://api.example.com:443/v1/status HTTP/1.1" "<<ua>>" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2
gcp-lb ¦ httpRequest: {requestMethod: GET, requestUrl: https://www.example.com/pricing, status: <<st>>, responseSize: <<bytes>>, remoteIp: <<ip>>, latency: 0.0<<n:10-99>>s}
morgan|express ¦ GET /api/users?page=<<n:1-20>> <<st>> <<f:1-99>> ms - <<bytes>>
fiber|go-api ¦ <<time>> | <<st>> |   <<n:1-900>>ms |  <<pip>> | GET     | /api/v1/health
php-cli-server ¦ [<<ctime>>] <<pip>>:<<port>> [<<st>>]: GET /index.php
aiohttp ¦ aiohttp.access: <<pip>> [<<clf>>] "GET /ws HTTP/1.1" 101 0 "-" "Python/3.11 aiohttp/3.9.3"
heroku-router ¦ at=info method=GET path="/" host=myapp.herokuapp.com request_id=<<uuid>> fwd="<<ip>>" dyno=web.<<n:1-4>> connect=0ms service=<<n:2-600>>ms status=<<st>> bytes=<<bytes>> protocol=https
cloudfront ¦ <<date>>	<<time>>	FRA56-P1	<<bytes>>	<<ip>>	GET	d111111abcdef8.cloudfront.net	/images/hero.jpg	<<st>>	-	<<ua>>	-	-	Hit
cloud-run ¦ GET <<st>> <<f:1-90>> KB <<n:3-900>> ms Chrome 122 https://orders-<<hex:10>>-ew.a.run.app/api/orders
nova-api ¦ nova.api.openstack.compute [req-<<uuid>> <<hex:32>> <<hex:32>> - - -] <<pip>> "DELETE /v2.1/servers/<<uuid>> HTTP/1.1" status: 204 len: 0 time: 0.<<n:1000000-9999999>>
@app ¦ GET /export/report.csv answered <<200|206>> after <<f:0-9>> s
@app ¦ Replied 301 Moved Permanently for http://example.com/old-pricing
envoy ¦ {"method":"GET","path":"/api/profile","protocol":"HTTP/2","response_code":<<st>>,"duration":<<n:1-500>>,"upstream_host":"<<pip>>:8080","x_forwarded_for":"<<ip>>"}
lighttpd ¦ <<ip>> example.org - [<<clf>>] "GET /downloads/setup-<<ver>>.tar.gz HTTP/1.1" <<200|206>> <<bytes>> "-" "Wget/1.21.4"
kong ¦ kong: upstream=orders-svc route=orders-route consumer=mobile-app method=POST uri=/orders status=<<st>> latency=<<n:2-500>>ms
nginx-unit ¦ unit: request "GET /api/health" from <<pip>> finished with status <<st>>
api-gateway ¦ [<<isots>>] <<POST|GET>> /graphql -> <<st>> <<n:1-900>>ms (operation=GetCart)
"""

# --------------------------------------------------------------------------------------------
# Critical Error
# --------------------------------------------------------------------------------------------
CRIT_TRAIN = r"""
kernel ~sys ¦ kernel: Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)
kernel ~sys ¦ kernel: Kernel panic - not syncing: Fatal exception in interrupt
kernel ~sys ¦ kernel: Out of memory: Killed process <<pid>> (<<postgres|mysqld|java|redis-server|etcd>>) total-vm:<<n:1000000-9000000>>kB, anon-rss:<<n:500000-8000000>>kB, file-rss:0kB, shmem-rss:0kB, UID:<<n:100-999>> pgtables:<<n:1000-20000>>kB oom_score_adj:0
kernel ~sys ¦ kernel: blk_update_request: critical medium error, dev <<sdb|sdc|sda>>, sector <<n:100000-99999999>> op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0
kernel ~sys ¦ kernel: EXT4-fs error (device <<sda1|nvme0n1p2|dm-0>>): ext4_lookup:1785: inode #<<n:1000-999999>>: comm <<nginx|java|rsync>>: deleted inode referenced: <<n:1000-999999>>
kernel ~sys ¦ kernel: EXT4-fs (<<dm-0|sdb1>>): Remounting filesystem read-only
kernel ~sys ¦ kernel: md/raid1:md0: Disk failure on <<sdb1|sdc1|sdd2>>, disabling device. md/raid1:md0: Operation continuing on 1 devices.
smartd ~sys ¦ smartd[<<pid>>]: Device: /dev/<<sda|sdb>> [SAT], FAILED SMART self-check. BACK UP DATA NOW!
kernel ~sys ¦ kernel: XFS (<<nvme0n1p2|sdc1>>): Corruption of in-memory data detected.  Shutting down filesystem
kernel ~sys ¦ kernel: mce: [Hardware Error]: CPU <<n:0-31>>: Machine Check Exception: 5 Bank <<n:0-9>>: b200000000070005
postgres ¦ <<ts>>.<<n:100-999>> UTC [<<pid>>] PANIC:  could not write to file "pg_wal/xlogtemp.<<pid>>": No space left on device
postgres ¦ <<ts>> UTC [<<pid>>] LOG:  server process (PID <<pid2>>) was terminated by signal 9: Killed
postgres ¦ <<ts>> UTC [<<pid>>] ERROR:  invalid page in block <<n:1-99999>> of relation base/16384/<<n:10000-99999>>
mysqld ¦ <<isots>> 0 [ERROR] [MY-012153] [InnoDB] Database page corruption on disk or a failed file read of page [page id: space=<<n:1-999>>, page number=<<n:1-99999>>]. You may have to recover from a backup.
mysqld ¦ <<isots>> mysqld got signal 11 ; Most likely, you have hit a bug, but this error can also be caused by malfunctioning hardware.
redis ¦ <<pid>>:M <<redisdate>> # Cluster state changed: fail
etcd ¦ etcd: raft cluster lost quorum: <<n:1-2>> of <<n:3-5>> members reachable, cannot elect leader
kafka ¦ [<<tsms>>] ERROR [KafkaServer id=<<n:0-5>>] Fatal error during KafkaServer startup. Prepare to shutdown (kafka.server.KafkaServer)
kafka ¦ Broker <<n:1-6>> is down; <<n:10-400>> partitions have no leader and are offline
elasticsearch ¦ [<<isots>>][WARN ][o.e.c.r.a.AllocationService] [es-master-<<n:1-3>>] Cluster health status changed from [YELLOW] to [RED] (reason: [shards failed [[logs-<<date>>][0]] ...]).
kube-controller-manager ¦ Node <<host>> status is now: NodeNotReady
kube-apiserver ¦ E<<klog>>       1 status.go:71] apiserver received an error that is not an metav1.Status: etcdserver: cluster is unavailable or misconfigured
systemd ~sys ¦ systemd[1]: <<mariadb|postgresql@16-main|mongod>>.service: Main process exited, code=dumped, status=11/SEGV
systemd ~sys ¦ systemd[1]: Failed to start <<PostgreSQL Cluster 16-main|MariaDB 10.11 database server|Redis persistent key-value database>>.
java ¦ # A fatal error has been detected by the Java Runtime Environment: SIGSEGV (0xb) at pc=0x00007f<<hex:10>>, pid=<<pid>>, tid=<<pid2>>
windows-kernel-power ¦ The system has rebooted without cleanly shutting down first. This error could be caused if the system stopped responding, crashed, or lost power unexpectedly.
windows-bugcheck ¦ The computer has rebooted from a bugcheck.  The bugcheck was: 0x000000<<1a|50|d1|ef>> (0xffff<<hex:12>>, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000).
windows-disk ¦ The device, \Device\Harddisk<<n:0-3>>\DR<<n:0-3>>, has a bad block.
rabbitmq ¦ rabbit@mq-<<n:1-3>>: network partition detected, cluster split into 2 halves; pausing minority side
ceph ¦ cluster [ERR] HEALTH_ERR <<n:2-6>> osds down; Reduced data availability: <<n:16-512>> pgs inactive
@app ¦ Primary database cluster is unavailable; all writes are failing
nginx ¦ <<ngxdate>> [emerg] <<pid>>#<<pid>>: bind() to 0.0.0.0:443 failed (98: Address already in use)
haproxy ~sys ¦ haproxy[<<pid>>]: backend <<api_servers|be_checkout|web_pool>> has no server available!
nfs-client ~sys ¦ kernel: nfs: server <<nas01|filer-2|storage-a>> not responding, still trying
@app ¦ FATAL Unable to connect to Redis at redis-master:6379 after 30 retries, shutting down
spring-app ¦ *************************** APPLICATION FAILED TO START *************************** Description: The bean 'dataSource' could not be created.
@app ¦ Split-brain detected between db-node-1 and db-node-2: both nodes claim the primary role
kernel ~sys ¦ kernel: watchdog: BUG: soft lockup - CPU#<<n:0-31>> stuck for <<n:22-60>>s! [kworker/u<<16|32|64>>:<<n:0-9>>:<<pid>>]
kernel ~sys ¦ kernel: BUG: unable to handle page fault for address: ffff<<hex:12>>
zfs ~sys ¦ zed: eid=<<n:10-999>> class=statechange pool='tank' vdev=<<sdb|sdc>> vdev_state=FAULTED; pool tank is now UNAVAIL
consul ¦ <<isots>> [ERROR] agent: Coordinate update error: error="No cluster leader"
mongod ¦ {"t":{"$date":"<<isots>>"},"s":"F","c":"STORAGE","id":<<n:20000-29999>>,"ctx":"initandlisten","msg":"Fatal assertion","attr":{"msgid":<<n:10000-99999>>,"file":"src/mongo/db/storage/wiredtiger/wiredtiger_util.cpp"}}
@app ¦ Core payment processor has stopped responding and is not accepting transactions
@app ¦ Storage array controller failure: all volumes on shelf <<n:1-9>> are offline
@app ¦ Data corruption detected in ledger table: checksums do not match across <<n:2-40>> pages
@app ¦ Message broker cluster is down, no queues are reachable
@app ¦ Cluster quorum lost: only <<n:1-2>> of 5 nodes reachable
@app ¦ Journal corruption detected; database refuses to start
@app ¦ Main application server crashed and did not come back up
@app ¦ Power supply failure on rack <<n:1-20>> chassis <<n:1-8>>; host powered off
@app ¦ Unrecoverable I/O error on volume vol-<<hex:8>>; filesystem unmounted
@app ¦ Primary DNS server is down; name resolution failing across all zones
@app ¦ All replicas of the session store are offline
"""

CRIT_HOLDOUT = r"""
kernel ~sys ¦ kernel: Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b
kernel ~sys ¦ kernel: oom_reaper: reaped process <<pid>> (<<mysqld|postgres>>), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB
kernel ~sys ¦ kernel: Buffer I/O error on dev <<sdc1|sdb2>>, logical block <<n:100000-9999999>>, lost async page write
postgres ¦ <<ts>> UTC [<<pid>>] PANIC:  could not locate a valid checkpoint record
mysqld ¦ InnoDB: Assertion failure in thread <<n:100000000000-999999999999>> in file fsp0fsp.cc line <<n:1000-4000>>
elasticsearch ¦ master not discovered or elected yet, an election requires at least 2 nodes with ids from [<<hex:8>>, <<hex:8>>, <<hex:8>>], have only discovered non-quorum
windows-ntfs ¦ The system failed to flush data to the transaction log. Corruption may occur in VolumeId: C:, DeviceName: \Device\HarddiskVolume3.
windows-whea ¦ A fatal hardware error has occurred. Reported by component: Processor Core. Error Source: Machine Check Exception
esxi ¦ Lost access to volume <<hex:8>>-<<hex:8>> (datastore<<n:1-4>>) due to connectivity issues. Recovery attempt is in progress and outcome will be reported shortly.
zookeeper ¦ Quorum lost: <<n:1-2>> of 5 servers up, leader election impossible
kubelet ¦ Node <<host>> is NotReady: kubelet stopped posting node status
ipmi ¦ CPU <<n:0-1>> temperature above critical threshold (<<n:100-110>> C), emergency shutdown of the host
@app ¦ Central inventory database has gone offline
@app ¦ Order processing engine crashed and is not recovering
@app ¦ Storage backend lost: every tenant volume is unavailable
@app ¦ Search cluster index files are corrupted beyond repair
@app ¦ Kafka cluster unavailable: none of the <<n:3-6>> brokers can be reached
mongod ¦ replica set rs0 has no primary; all members are in state RECOVERING
@app ¦ Hypervisor <<host>> crashed, taking down <<n:5-40>> virtual machines
kernel ~sys ¦ kernel: nvme nvme<<n:0-1>>: controller is down; will reset: CSTS=0xffffffff, PCI_STATUS=0xffff
"""

# --------------------------------------------------------------------------------------------
# Error
# --------------------------------------------------------------------------------------------
ERR_TRAIN = r"""
spring-app ¦ <<tsms>> ERROR <<n:1-9>> --- [nio-8080-exec-<<n:1-20>>] o.a.c.c.C.[.[.[/].[dispatcherServlet]    : Servlet.service() for servlet [dispatcherServlet] in context with path [] threw exception [Request processing failed; nested exception is java.lang.NullPointerException] with root cause
billing-api ¦ <<tsms>> ERROR [pool-<<n:1-9>>-thread-<<n:1-9>>] c.e.billing.InvoiceJob - Invoice job <<n:100-9999>> failed: java.sql.SQLTimeoutException: Query timed out after 30000ms
@app ¦ ERROR:root:Failed to process message <<uuid>>: KeyError: 'customer_id'
celery ¦ [<<tsms>>: ERROR/ForkPoolWorker-<<n:1-16>>] Task tasks.send_invoice[<<uuid>>] raised unexpected: ConnectionResetError(104, 'Connection reset by peer')
sidekiq|rails ¦ Error performing ReportJob (Job ID: <<uuid>>) from Sidekiq(default) in <<n:50-9000>>ms: Net::ReadTimeout (Net::ReadTimeout with #<TCPSocket:(closed)>)
orders-worker ¦ Error: Request to inventory-service timed out after 5000ms (attempt 3/3)
backup-agent ¦ level=error ts=<<isots>> caller=sync.go:<<n:40-400>> msg="sync failed" bucket=backups-eu err="context deadline exceeded"
postgres ¦ <<ts>> UTC [<<pid>>] ERROR:  duplicate key value violates unique constraint "users_email_key"
postgres ¦ <<ts>> UTC [<<pid>>] ERROR:  canceling statement due to statement timeout
postgres ¦ <<ts>> UTC [<<pid>>] ERROR:  deadlock detected
mysqld ¦ [ERROR] Slave SQL for channel '': Error 'Duplicate entry '<<n:1000-99999>>' for key 'PRIMARY'' on query. Default database: 'shop'. Error_code: 1062
redis ¦ <<pid>>:S <<redisdate>> # Error condition on socket for SYNC: Connection refused
kafka-consumer ¦ ERROR [Consumer clientId=consumer-orders-1, groupId=orders] Offset commit failed on partition orders-<<n:0-11>> at offset <<n:1000-999999>>: The coordinator is not aware of this member.
kafka-producer ¦ Error while sending record to topic payments-events: org.apache.kafka.common.errors.TimeoutException: Expiring <<n:2-40>> record(s) for payments-events-<<n:0-7>>: <<n:30001-31000>> ms has passed since batch creation
kubelet ¦ E<<klog>>    <<n:800-3000>> pod_workers.go:1298] "Error syncing pod, skipping" err="failed to \"StartContainer\" for \"api\" with ErrImagePull" pod="<<ns>>/<<pod>>"
kube-controller-manager ¦ Job <<ns>>/nightly-export-<<n:28000000-28999999>> failed: BackoffLimitExceeded, Job has reached the specified backoff limit
systemd ~sys ¦ systemd[1]: <<backup-s3|report-sync|cert-export>>.service: Failed with result 'exit-code'.
nginx ¦ <<ngxdate>> [error] <<pid>>#<<pid>>: *<<n:100-99999>> upstream timed out (110: Connection timed out) while reading response header from upstream, client: <<ip>>, server: api.example.com, request: "GET /v1/reports HTTP/1.1", upstream: "http://<<pip>>:8080/v1/reports"
apache ¦ [<<apachets>>] [proxy:error] [pid <<pid>>] (111)Connection refused: AH00957: HTTP: attempt to connect to 127.0.0.1:8080 (localhost) failed
php-fpm ¦ PHP Fatal error:  Uncaught TypeError: array_merge(): Argument #2 must be of type array, null given in /var/www/app/src/Cart.php:<<n:20-400>>
kestrel|dotnet-api ¦ fail: Microsoft.AspNetCore.Server.Kestrel[13] Connection id "<<connid>>", Request id "<<connid>>:00000002": An unhandled exception was thrown by the application. System.InvalidOperationException: Sequence contains no elements
windows-application ¦ Faulting application name: ReportBuilder.exe, version: <<ver>>.0, faulting module name: ntdll.dll, exception code: 0xc0000005
rsync ¦ rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1338) [sender=3.2.7]
aws-cli ¦ upload failed: ./dump-<<date>>.sql.gz to s3://acme-backups/db/dump-<<date>>.sql.gz An error occurred (RequestTimeout) when calling the PutObject operation
elasticsearch ¦ failed to execute bulk item (index) index {[logs-<<date>>][_doc][<<hex:20>>]}: mapper_parsing_exception: failed to parse field [duration] of type [long]
@app ¦ Replica sync for partition <<n:1-64>> did not finish
@app ¦ Nightly ETL job 'sales_daily' failed at step <<n:2-4>> of 5
@app ¦ Payment capture for order <<n:10000-99999>> failed: gateway timeout
@app ¦ Thumbnail generation failed for image <<n:1000-9999>>.jpg: unsupported color profile
@app ¦ Export task <<n:100-9999>> aborted after 3 retries
@app ¦ Webhook delivery to partner endpoint failed after <<n:3-8>> attempts; giving up
@app ¦ Worker <<n:1-32>> restarted unexpectedly while importing batch <<n:100-999>>
airflow ¦ Marking task as FAILED. dag_id=etl_orders, task_id=load_to_warehouse, execution_date=<<date>>T02:00:00+00:00, start_date=<<date>>T02:00:0<<n:1-9>>
jenkins ¦ Build #<<n:100-3000>> of job api-service-ci finished: FAILURE
gitlab-runner ¦ ERROR: Job failed: exit code <<n:1-2>>
ansible ¦ fatal: [web-0<<n:1-9>>]: FAILED! => {"changed": false, "msg": "Failed to download metadata for repo 'appstream': Cannot download repomd.xml"}
terraform ¦ Error: creating S3 Bucket (logs-archive-<<n:1-99>>): BucketAlreadyExists
dockerd ¦ Error response from daemon: driver failed programming external connectivity on endpoint web (<<hex:12>>): Bind for 0.0.0.0:8080 failed: port is already allocated
frontend ¦ failed to call recommendations service: rpc error: code = DeadlineExceeded desc = context deadline exceeded
postfix ~sys ¦ postfix/smtp[<<pid>>]: <<hex:10>>: to=<<<email>>>, relay=none, delay=<<n:1-900>>, delays=<<n:1-900>>/0.01/<<n:1-30>>/0, dsn=4.4.1, status=deferred (connect to mx.partner.example[<<ip>>]:25: Connection timed out)
postfix ~sys ¦ postfix/smtp[<<pid>>]: <<hex:10>>: to=<<<email>>>, relay=mx.example.net[<<ip>>]:25, dsn=5.1.1, status=bounced (host mx.example.net[<<ip>>] said: 550 5.1.1 Recipient address rejected: User unknown)
node-api ¦ Error: getaddrinfo ENOTFOUND api.partner.example at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:107:26)
java ¦ Exception in thread "scheduler-<<n:1-8>>" java.lang.IllegalStateException: Cannot reschedule a cancelled task
spring-app ¦ <<tsms>> ERROR <<n:1-9>> --- [nio-8080-exec-<<n:1-20>>] o.h.engine.jdbc.spi.SqlExceptionHelper   : Data truncation: Data too long for column 'notes' at row 1
@app ¦ Health probe to https://internal-api:8443 failed: x509: certificate has expired
prometheus ¦ level=error ts=<<isots>> component="scrape manager" scrape_pool=node target=http://<<pip>>:9100/metrics msg="Error scraping target" err="context deadline exceeded"
@app ¦ Failed to generate PDF for invoice INV-<<n:10000-99999>>: template variable 'due_date' undefined
@app ¦ CSV import job <<n:100-9999>> failed: row <<n:2-999>> has 7 columns, expected 9
@app ¦ Retries exhausted for message <<hex:8>> on queue emails.outbound; moved to dead-letter queue
@app ¦ Data sync with CRM partner stopped halfway: remote closed the connection after <<n:100-9000>> records
@app ¦ Cache warmup for region eu-west failed, serving requests without cache
kubelet ¦ Liveness probe failed: Get "http://<<pip>>:8080/healthz": dial tcp <<pip>>:8080: connect: connection refused
kubelet ¦ MountVolume.SetUp failed for volume "config" : configmap "app-config" not found
@app ¦ Could not deliver order confirmation email for order <<n:10000-99999>>: SMTP server responded 451 temporary failure
"""

ERR_HOLDOUT = r"""
@app ¦ <<tsms>> - worker - ERROR - Could not refresh exchange rates: HTTPSConnectionPool(host='api.rates.example', port=443): Read timed out. (read timeout=10)
go-api ¦ <<ts>> http: panic serving <<pip>>:<<port>>: runtime error: invalid memory address or nil pointer dereference
laravel ¦ [<<ts>>] production.ERROR: SQLSTATE[23000]: Integrity constraint violation: 1452 Cannot add or update a child row: a foreign key constraint fails
@app ¦ Unhandled exception in job ResizeImages: OSError: cannot identify image file 'uploads/<<n:1000-9999>>.heic'
spark ¦ <<ts>> ERROR TaskSetManager: Task <<n:0-99>> in stage <<n:1-40>>.0 failed 4 times; aborting job
mongod ¦ E11000 duplicate key error collection: shop.orders index: order_no_1 dup key: { order_no: "A-<<n:1000-9999>>" }
kubelet ¦ Failed to pull image "registry.example.com/api:<<ver>>": rpc error: code = NotFound desc = failed to pull and unpack image: not found
windows-taskscheduler ¦ Task Scheduler failed to start "\Backup\NightlyCopy" task for user "CORP\svc_backup". Additional Data: Error Value: 2147942402.
github-actions ¦ ##[error]Process completed with exit code 1.
@app ¦ Replica for partition <<n:1-64>> fell out of sync and the resync job failed
@app ¦ Server <<n:1-60>> rebooted unexpectedly in the middle of the nightly import
@app ¦ Invoice email to customer <<n:1000-9999>> could not be delivered; will retry later
@app ¦ Module ReportGen rejected its input: unexpected end of JSON at position <<n:10-9000>>
@app ¦ Scheduled report 'weekly-kpi' failed to render
caddy ¦ {"level":"error","ts":<<epoch>>.<<n:1000-9999>>,"logger":"http.handlers.reverse_proxy","msg":"aborting with incomplete response","upstream":"<<pip>>:3000","error":"reading: context canceled"}
rust-worker ¦ <<isots>> ERROR worker::jobs: job failed job_id=<<uuid>> error=reqwest::Error { kind: Timeout, url: "https://api.partner.example/v2/sync" }
cron ~sys ¦ CRON[<<pid>>]: (backup) MAIL (mailed <<n:100-900>> bytes of output but got status 0x004b from MTA)
java ¦ Caused by: java.net.SocketTimeoutException: Read timed out
@app ¦ Geocoding request for address batch <<n:10-999>> failed: provider returned an empty result
hadoop ¦ <<tsms>> WARN org.apache.hadoop.mapred.YarnChild: Exception running child : java.io.IOException: Spill failed
"""

# --------------------------------------------------------------------------------------------
# Security Alert
# --------------------------------------------------------------------------------------------
SEC_TRAIN = r"""
sshd ~sys ¦ sshd[<<pid>>]: Failed password for invalid user <<baduser>> from <<ip>> port <<port>> ssh2
sshd ~sys ¦ sshd[<<pid>>]: Failed password for root from <<ip>> port <<port>> ssh2
sshd ~sys ¦ sshd[<<pid>>]: Invalid user <<baduser>> from <<ip>> port <<port>>
sshd ~sys ¦ sshd[<<pid>>]: error: maximum authentication attempts exceeded for root from <<ip>> port <<port>> ssh2 [preauth]
sshd ~sys ¦ sshd[<<pid>>]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=<<ip>>  user=root
fail2ban ~sys ¦ fail2ban.actions        [<<pid>>]: NOTICE  [<<sshd|nginx-http-auth|postfix-sasl>>] Ban <<ip>>
sudo ~sys ¦ sudo: <<user>> : user NOT in sudoers ; TTY=pts/<<n:0-9>> ; PWD=/home/<<user>> ; USER=root ; COMMAND=/bin/cat /etc/shadow
sudo ~sys ¦ sudo: pam_unix(sudo:auth): authentication failure; logname=<<user>> uid=<<n:1000-1999>> euid=0 tty=/dev/pts/<<n:0-9>> ruser=<<user>> rhost=  user=<<user>>
su ~sys ¦ su[<<pid>>]: FAILED SU (to root) <<user>> on pts/<<n:0-9>>
kernel ~sys ¦ kernel: [UFW BLOCK] IN=eth0 OUT= MAC=<<hex:2>>:<<hex:2>>:<<hex:2>>:<<hex:2>>:<<hex:2>>:<<hex:2>> SRC=<<ip>> DST=<<pip>> LEN=44 TOS=0x00 PREC=0x00 TTL=<<n:30-250>> ID=<<n:1000-65000>> PROTO=TCP SPT=<<port>> DPT=<<23|3389|445|5900>> WINDOW=1024 RES=0x00 SYN URGP=0
auditd ~sys ¦ audit: type=1400 audit(<<epoch>>.<<n:100-999>>:<<n:100-9999>>): avc:  denied  { read } for  pid=<<pid>> comm="httpd" name="shadow" dev="dm-0" ino=<<n:1000-99999>> scontext=system_u:system_r:httpd_t:s0 tcontext=system_u:object_r:shadow_t:s0 tclass=file permissive=0
kernel ~sys ¦ kernel: audit: apparmor="DENIED" operation="open" profile="/usr/sbin/mysqld" name="/etc/ssl/private/server.key" pid=<<pid>> comm="mysqld" requested_mask="r" denied_mask="r" fsuid=<<n:100-999>> ouid=0
modsecurity ¦ [client <<ip>>] ModSecurity: Access denied with code 403 (phase 2). Matched "Operator `Ge' with parameter `5' against variable `TX:ANOMALY_SCORE' (Value: `<<n:10-40>>' )" [file "/etc/modsecurity/crs/REQUEST-949-BLOCKING-EVALUATION.conf"] [msg "Inbound Anomaly Score Exceeded (Total Score: <<n:10-40>>)"] [uri "/index.php"]
waf ¦ WAF blocked request from <<ip>>: SQL injection pattern in parameter 'id' (rule 942100)
windows-security ¦ An account failed to log on. Subject: Security ID: NULL SID Logon Type: 3 Account For Which Logon Failed: Account Name: <<Administrator|admin|svc_backup>> Failure Information: Failure Reason: Unknown user name or bad password. Status: 0xC000006D Network Information: Source Network Address: <<ip>>
windows-security ¦ A user account was locked out. Subject: Account Name: DC01$ Account That Was Locked Out: Account Name: <<user>> Additional Information: Caller Computer Name: WS-0<<n:100-999>>
windows-defender ¦ Microsoft Defender Antivirus has detected malware or other potentially unwanted software. Name: <<Trojan:Win32/Emotet.RPX!MTB|Backdoor:Win32/Cobaltstrike.D|Ransom:Win32/LockBit.AA>> Path: file:_C:\Users\<<user>>\Downloads\invoice_<<n:1000-9999>>.doc
clamav ¦ /var/www/uploads/<<n:1000-99999>>.php: Php.Webshell.Generic-<<n:1000-9999>> FOUND
rkhunter ¦ Warning: The file properties have changed: File: /usr/bin/<<ssh|ls|ps>> Current hash: <<hex:40>> Stored hash: <<hex:40>>
wazuh|ossec ¦ Rule: 5712 fired (level 10) -> "SSHD brute force trying to get access to the system. Non existent user." Src IP: <<ip>>
suricata ¦ [1:2024897:3] ET EXPLOIT Possible Apache Struts OGNL Expression Injection (CVE-2017-5638) [Classification: Attempted Administrator Privilege Gain] [Priority: 1] {TCP} <<ip>>:<<port>> -> <<pip>>:8080
cloudtrail ¦ {"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","userIdentity":{"type":"IAMUser","userName":"<<user>>"},"responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"},"sourceIPAddress":"<<ip>>","errorMessage":"Failed authentication"}
guardduty ¦ GuardDuty finding UnauthorizedAccess:EC2/SSHBruteForce: <<ip>> is performing SSH brute force attacks against i-0<<hex:16>>
gcp-audit ¦ PERMISSION_DENIED: Permission 'secretmanager.versions.access' denied on resource 'projects/prod/secrets/db-password' for principal 'serviceAccount:ci-runner@prod.iam.gserviceaccount.com'
kube-apiserver ¦ secrets is forbidden: User "system:serviceaccount:<<ns>>:default" cannot list resource "secrets" in API group "" in the namespace "kube-system"
postgres ¦ <<ts>> UTC [<<pid>>] FATAL:  password authentication failed for user "<<postgres|admin|replicator>>"
postgres ¦ <<ts>> UTC [<<pid>>] FATAL:  no pg_hba.conf entry for host "<<ip>>", user "<<admin|postgres>>", database "prod", SSL off
mysqld ¦ [Warning] Access denied for user 'root'@'<<ip>>' (using password: YES)
redis ¦ <<pid>>:M <<redisdate>> # Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. Connection from <<ip>>:<<port>> aborted.
vault ¦ <<isots>> [ERROR] core: permission denied: path=auth/approle/login remote_addr=<<ip>> error="invalid role or secret ID"
@app ¦ TLS handshake rejected from <<ip>>: client certificate signed by unknown authority (CN=admin.internal)
@app ¦ Certificate pinning failure for api.bank.example: presented fingerprint does not match, possible man-in-the-middle
@app ¦ Account '<<user>>' locked after <<n:5-12>> consecutive failed sign-ins
@app ¦ User <<n:1000-9999>> attempted to read payroll records without permission
@app ¦ Privilege escalation: service account svc-report added itself to Domain Admins
@app ¦ Token reuse detected for session <<hex:8>>; session revoked
@app ¦ Request signed with a revoked API key from <<ip>> was rejected
@app ¦ Port scan detected from <<ip>>: <<n:500-4000>> ports probed in <<n:5-30>> seconds
@app ¦ Credential stuffing pattern: <<n:100-900>> failed logins across <<n:80-800>> accounts from <<ip>>
@app ¦ Impossible travel for user <<n:1000-9999>>: sign-ins from Germany and Brazil within <<n:5-30>> minutes
@app ¦ Outbound connection to known command-and-control domain update-check.badcdn.example blocked
@app ¦ File integrity monitor: /etc/passwd modified outside of the package manager
openvpn ¦ VERIFY ERROR: depth=0, error=certificate revoked: CN=laptop-<<user>>
dovecot ~sys ¦ dovecot[<<pid>>]: auth: pam(<<email>>,<<ip>>,<<hex:16>>): pam_authenticate() failed: Authentication failure (Password mismatch?)
postfix ~sys ¦ postfix/smtpd[<<pid>>]: warning: unknown[<<ip>>]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
vsftpd ¦ [<<baduser>>] FAIL LOGIN: Client "<<ip>>"
auditd ¦ type=USER_AUTH msg=audit(<<epoch>>.<<n:100-999>>:<<n:100-9999>>): pid=<<pid>> uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication grantors=? acct="root" exe="/usr/sbin/sshd" hostname=<<ip>> addr=<<ip>> terminal=ssh res=failed'
cloudflare-waf ¦ {"action":"block","clientIP":"<<ip>>","ruleId":"100015","description":"XSS attack in query string","uri":"/search?q=<script>alert(1)</script>"}
kernel ~sys ¦ kernel: TCP: request_sock_TCP: Possible SYN flooding on port <<443|80|8443>>. Sending cookies.  Check SNMP counters.
okta ¦ user.session.start FAILURE: INVALID_CREDENTIALS actor=<<email>> client.ipAddress=<<ip>>
okta ¦ user.account.lock: account <<email>> locked out after too many failed MFA challenges
spring-app ¦ o.s.s.a.dao.DaoAuthenticationProvider  : Failed to authenticate since password does not match stored value
github-audit ¦ secret_scanning_alert.create: AWS access key exposed in commit <<hex:7>> in repository acme/payments
@app ¦ Rejected request with forged JWT: signature verification failed (kid=unknown) from <<ip>>
@app ¦ Blocked path traversal attempt "../../etc/passwd" in parameter 'file' from <<ip>>
falco ¦ <<time>>.<<n:100000000-999999999>>: Notice A shell was spawned in a container with an attached terminal (user=root container=payments-api shell=bash parent=runc)
falco ¦ <<time>>.<<n:100000000-999999999>>: Warning Sensitive file opened for reading by non-trusted program (user=www-data program=python3 file=/etc/shadow)
"""

SEC_HOLDOUT = r"""
sshd ~sys ¦ sshd[<<pid>>]: Connection closed by invalid user <<baduser>> <<ip>> port <<port>> [preauth]
sshd ~sys ¦ sshd[<<pid>>]: Bad protocol version identification 'GET / HTTP/1.1' from <<ip>> port <<port>>
crowdsec ¦ <<ip>> performed 'crowdsecurity/http-probing' (<<n:10-90>> events over <<n:2-30>>s); ban on Ip <<ip>> for 4h
windows-security ¦ Kerberos pre-authentication failed. Account Information: Security ID: CORP\svc_sql Account Name: svc_sql Failure Information: Failure Code: 0x18 Network Information: Client Address: ::ffff:<<ip>>
windows-security ¦ The audit log was cleared. Subject: Security ID: CORP\tempadmin Account Name: tempadmin Logon ID: 0x<<hex:6>>
azure-ad ¦ Sign-in failure for admin@contoso.example: error 50126 Invalid username or password; IP <<ip>>; location RU
cloudtrail ¦ AccessDenied: User: arn:aws:iam::<<n:100000000000-999999999999>>:user/ci-bot is not authorized to perform: iam:CreateAccessKey on resource: user root
mongod ¦ {"t":{"$date":"<<isots>>"},"s":"I","c":"ACCESS","id":20249,"ctx":"conn<<n:10-9999>>","msg":"Authentication failed","attr":{"mechanism":"SCRAM-SHA-256","principalName":"admin","authenticationDatabase":"admin","client":"<<ip>>:<<port>>","result":"AuthenticationFailed: SCRAM authentication failed, storedKey mismatch"}}
naxsi ¦ NAXSI_FMT: ip=<<ip>>&server=shop.example&uri=/product&learning=0&vers=1.3&total_processed=<<n:100-9999>>&total_blocked=<<n:1-99>>&block=1&cscore0=$SQL&score0=8
@app ¦ Somebody tried <<n:200-900>> passwords against the VPN gateway from <<ip>>
@app ¦ Ransomware-like behaviour: mass file renames detected on share \\fs01\finance
@app ¦ Suspicious PowerShell execution with an encoded command on host WS-0<<n:100-999>>
@app ¦ Attempt by user <<n:1000-9999>> to disable audit logging was blocked
@app ¦ Login from TOR exit node <<ip>> rejected for account <<n:1000-9999>>
@app ¦ API key for partner 'acme' used from unrecognised IP <<ip>>; key suspended
sudo ~sys ¦ sudo: <<user>> : 3 incorrect password attempts ; TTY=pts/<<n:0-9>> ; PWD=/home/<<user>> ; USER=root ; COMMAND=/usr/bin/passwd root
portsentry ¦ attackalert: SYN/Normal scan from host: <<ip>>/<<ip>> to TCP port: <<22|23|3306>>
@app ¦ Rogue certificate for login.example.com issued by an unknown CA seen on the internal network; possible interception
auth0 ¦ Failed Login (wrong password) - user: <<email>> - ip: <<ip>> - connection: Username-Password-Authentication
kubernetes-audit ¦ Anonymous request to /api/v1/namespaces/kube-system/secrets from <<ip>> denied (user=system:anonymous)
"""

# --------------------------------------------------------------------------------------------
# System Notification
# --------------------------------------------------------------------------------------------
SYS_TRAIN = r"""
systemd ~sys ¦ systemd[1]: Started nginx.service - A high performance web server and a reverse proxy server.
systemd ~sys ¦ systemd[1]: Stopped Docker Application Container Engine.
systemd ~sys ¦ systemd[1]: Reloaded The Apache HTTP Server.
systemd ~sys ¦ systemd[1]: Finished Daily apt upgrade and clean activities.
systemd ~sys ¦ systemd[1]: <<apt-daily|man-db|fstrim|logrotate>>.service: Deactivated successfully.
shutdown ~sys ¦ systemd-logind[<<pid>>]: The system will reboot now!
cron ~sys ¦ CRON[<<pid>>]: (root) CMD (cd / && run-parts --report /etc/cron.hourly)
anacron ~sys ¦ anacron[<<pid>>]: Job `cron.<<daily|weekly>>' terminated
logrotate ¦ Rotated /var/log/nginx/*.log: <<n:2-8>> files compressed, <<n:1-4>> old archives removed
certbot ¦ Congratulations, all renewals succeeded: /etc/letsencrypt/live/<<example.com|shop.example.net>>/fullchain.pem (success)
cert-manager ¦ Certificate "<<shop|api|grafana>>-tls" in namespace "<<ns>>": The certificate has been successfully issued
dpkg|apt ¦ Setting up openssl (3.0.13-0ubuntu3.<<n:1-4>>) ...
dnf ¦ Upgraded: kernel-5.14.0-<<n:300-500>>.<<n:1-30>>.1.el9_3.x86_64
kubelet ¦ Successfully pulled image "<<nginx:1.25.4|redis:7.2.4|registry.example.com/api:2.8.1>>" in <<f:0-9>>s (<<f:0-9>>s including waiting)
kubelet ¦ Started container <<api|web|sidecar|migrations>>
kube-scheduler ¦ Successfully assigned <<ns>>/<<pod>> to <<host>>
postgres ¦ <<ts>> UTC [<<pid>>] LOG:  database system is ready to accept connections
postgres ¦ <<ts>> UTC [<<pid>>] LOG:  received SIGHUP, reloading configuration files
mysqld ¦ <<isots>> 0 [System] [MY-010931] [Server] /usr/sbin/mysqld: ready for connections. Version: '8.0.<<n:30-40>>'  socket: '/var/run/mysqld/mysqld.sock'  port: 3306  MySQL Community Server - GPL.
redis ¦ <<pid>>:M <<redisdate>> * Ready to accept connections tcp
redis ¦ <<pid>>:M <<redisdate>> * Background saving terminated with success
kafka ¦ [<<tsms>>] INFO [KafkaServer id=<<n:0-5>>] started (kafka.server.KafkaServer)
elasticsearch ¦ [<<isots>>][INFO ][o.e.s.SnapshotsService   ] [es-master-<<n:1-3>>] snapshot [nightly:snap-<<date>>/<<hex:10>>] completed with state [SUCCESS]
spring-app ¦ <<tsms>>  INFO <<n:1-9>> --- [           main] c.e.billing.BillingApplication           : Started BillingApplication in <<f:2-20>> seconds (process running for <<f:3-22>>)
spring-app ¦ <<tsms>>  INFO <<n:1-9>> --- [           main] o.s.b.w.embedded.tomcat.TomcatWebServer  : Tomcat started on port 8080 (http) with context path ''
nginx ¦ <<ngxdate>> [notice] <<pid>>#<<pid>>: signal process started
apache ¦ [<<apachets>>] [mpm_event:notice] [pid <<pid>>:tid <<n:100000000000-999999999999>>] AH00489: Apache/2.4.58 (Ubuntu) configured -- resuming normal operations
dockerd ¦ level=info msg="Daemon has completed initialization"
windows-scm ¦ The <<Windows Update|Print Spooler|Background Intelligent Transfer Service>> service entered the running state.
windows-update ¦ Installation Successful: Windows successfully installed the following update: 2025-0<<n:1-3>> Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB50<<n:30000-39999>>)
windows-kernel-general ¦ The operating system started at system time <<isots>>.
pgbackrest ¦ P00   INFO: backup command end: completed successfully (<<n:10000-999999>>ms)
restic ¦ snapshot <<hex:8>> saved
veeam ¦ Job 'Nightly-VMs' finished with Success. <<ofvms>>
@app ¦ Nightly backup of the customer database finished without errors
@app ¦ Planned reboot of host <<host>> scheduled by the operations team for 02:00
@app ¦ Software upgraded from 4.<<n:0-5>>.<<n:0-9>> to 4.<<n:6-9>>.0
@app ¦ Temporary file cleanup finished
@app ¦ Configuration reloaded from /etc/<<app>>/config.yaml
@app ¦ Application cache cleared after deployment
@app ¦ Scheduled job 'rotate-keys' completed
@app ¦ Report archive uploaded to storage bucket successfully
@app ¦ Database maintenance window started
@app ¦ Service billing-worker started (version <<ver>>)
chronyd ~sys ¦ chronyd[<<pid>>]: Selected source <<ip>> (<<n:0-3>>.pool.ntp.org)
sshd ~sys ¦ sshd[<<pid>>]: Server listening on 0.0.0.0 port 22.
timesyncd ~sys ¦ systemd-timesyncd[<<pid>>]: Initial synchronization to time server <<ip>>:123 (ntp.ubuntu.com).
jenkins ¦ INFO	hudson.lifecycle.Lifecycle#onReady: Jenkins is fully up and running
helm ¦ Release "<<payments|web|monitoring>>" has been upgraded. Happy Helming!
rds ¦ Automated snapshot rds:prod-db-<<date>>-03-10 created
gitlab ¦ Creating backup archive: <<epoch>>_<<date>>_16.9.2_gitlab_backup.tar ... done
kubectl ¦ deployment "web" successfully rolled out
windows-grouppolicy ¦ The Group Policy settings for the computer were processed successfully. There were no changes detected since the last successful processing of Group Policy.
@app ¦ Nightly export file report_<<n:1000-9999>>.csv transferred to the SFTP server successfully
@app ¦ Log rotation completed for /var/log/<<app>>
@app ¦ Search index rebuild finished
@app ¦ Cron job 'cleanup-sessions' ran at 03:00 and completed
"""

SYS_HOLDOUT = r"""
systemd ~sys ¦ systemd[1]: Reached target Multi-User System.
windows-eventlog ¦ The Event log service was started.
windows-user32 ¦ The process C:\Windows\system32\shutdown.exe (<<ws>>) has initiated the restart of computer <<ws>> on behalf of user CORP\<<user>> for the following reason: Operating System: Upgrade (Planned)
mongod ¦ {"t":{"$date":"<<isots>>"},"s":"I","c":"NETWORK","id":23016,"ctx":"listener","msg":"Waiting for connections","attr":{"port":27017,"ssl":"off"}}
rabbitmq ¦ Server startup complete; <<n:3-6>> plugins started.
nginx ¦ <<ngxdate>> [notice] 1#1: start worker processes
postgres ¦ <<ts>> UTC [<<pid>>] LOG:  listening on IPv4 address "0.0.0.0", port 5432
node-api ¦ Server listening on http://0.0.0.0:3000
@app ¦ Weekly full backup written to the tape library
@app ¦ Firmware of switch sw-core-<<n:1-4>> updated to 9.3(<<n:8-13>>)
@app ¦ Maintenance mode switched off for store <<n:100-999>> after the deploy
@app ¦ Mailbox archive job finished on schedule
@app ¦ Certificate for api.example.org renewed, valid until <<date>>
pacman ¦ [ALPM] upgraded linux (6.7.9.arch1-1 -> 6.8.1.arch1-1)
puppet ¦ Notice: Applied catalog in <<f:1-60>> seconds
chef ¦ Chef Infra Client Run complete in <<f:5-120>> seconds
docker-compose ¦ Container web-<<n:1-3>>  Started
kubelet ¦ Pulling image "redis:7.2"
@app ¦ Old session records purged by the nightly housekeeping task
windows-servicing ¦ Windows Defender definitions updated to version 1.<<n:400-420>>.<<n:100-999>>.0
"""

# --------------------------------------------------------------------------------------------
# Resource Usage
# --------------------------------------------------------------------------------------------
RES_TRAIN = r"""
@app ¦ CPU usage <<n:5-99>>% on host <<host>> (load average: <<f:0-9>>, <<f:0-9>>, <<f:0-9>>)
top ¦ <<top>>
node-exporter ¦ <<mem>>
diskmon ¦ Filesystem /dev/nvme0n1p1 <<df>> mounted on /
java ¦ [<<f:1-9999>>s][info][gc] GC(<<n:1-9999>>) Pause Young (Normal) (G1 Evacuation Pause) <<n:300-900>>M-><<n:50-290>>M(1024M) <<f:1-40>>ms
java ¦ Heap usage: <<heap>>
spring-app ¦ <<tsms>> DEBUG <<n:1-9>> --- [l-1 housekeeper] com.zaxxer.hikari.pool.HikariPool        : HikariPool-1 - Pool stats (<<hikari>>)
tomcat ¦ Thread pool http-nio-8080: <<tomcat>>
redis ¦ <<redismem>>
redis ¦ <<pid>>:M <<redisdate>> - DB 0: <<n:1000-999999>> keys (<<n:0-9999>> volatile) in <<n:4096-1048576>> slots HT.
postgres-exporter ¦ connections: <<n:5-199>> of max_connections 200 in use
mysqld-exporter ¦ Threads_connected: <<n:10-400>>, Threads_running: <<n:1-40>>, Max_used_connections: <<n:100-480>> / max_connections 500
kubectl ¦ NAME=<<pod>> CPU(cores)=<<n:1-2000>>m MEMORY(bytes)=<<n:30-4000>>Mi
kube-controller-manager ¦ ResourceQuota "team-a" in namespace team-a: requests.cpu <<f:1-10>>/10, requests.memory <<n:4-32>>Gi/32Gi, pods <<n:3-50>>/50
kubelet ¦ Node allocatable: cpu=3920m memory=<<f:10-15>>Gi ephemeral-storage=<<n:50-95>>Gi pods=110
docker-stats ¦ container=api-<<n:1-4>> cpu=<<f:0-99>>% <<dockermem>> net_io=<<f:0-9>>GB/<<n:10-999>>MB block_io=<<n:0-400>>MB/0B pids=<<n:5-200>>
netmon ¦ eth0: <<net>>
iostat ¦ nvme0n1: r/s=<<n:10-5000>> w/s=<<n:10-5000>> rkB/s=<<n:100-99999>> wkB/s=<<n:100-99999>> %util=<<f:1-99>>
gcp-quota ¦ Quota usage for project analytics-prod: CPUS <<n:10-239>>/240 in europe-west1
mail-server ¦ Mailbox quota for <<email>>: <<f:0-10>> GB of 10 GB used
s3-inventory ¦ Bucket acme-logs: <<f:1-99>> TiB stored across <<f:1-90>>M objects
kafka ¦ Log directory /var/lib/kafka usage: <<n:10-990>>GB of 1TB
elasticsearch ¦ [<<isots>>][INFO ][o.e.c.r.a.DiskThresholdMonitor] [es-data-<<n:1-6>>] high disk watermark [90%] exceeded on [es-data-<<n:1-6>>][/var/lib/elasticsearch] free: <<f:10-90>>gb[<<f:5-9>>%], shards will be relocated away from this node
elasticsearch ¦ [<<isots>>][INFO ][o.e.m.j.JvmGcMonitorService] [es-data-<<n:1-6>>] [gc][<<n:1000-99999>>] overhead, spent [<<n:100-999>>ms] collecting in the last [1s]
windows-perfmon ¦ Processor(_Total)\% Processor Time = <<f:1-99>>; Memory\Available MBytes = <<n:200-9000>>; PhysicalDisk(_Total)\% Disk Time = <<f:1-99>>
windows-resource-exhaustion ¦ Windows successfully diagnosed a low virtual memory condition. The following programs consumed the most virtual memory: <<chrome.exe|sqlservr.exe|java.exe>> (<<pid>>) consumed <<n:1000000000-9000000000>> bytes
prometheus ¦ node_memory_MemAvailable_bytes{instance="<<pip>>:9100",job="node"} <<f:1-9>>e+09
cinder-scheduler ¦ cinder.scheduler.host_manager [req-<<uuid>> - - - - -] Backend lvm@pool-<<a|b|c>>: total_capacity_gb=2048.0, free_capacity_gb=<<f:100-2000>>, allocated_capacity_gb=<<n:10-1900>>
placement ¦ Inventory for resource provider <<uuid>>: VCPU total=64 reserved=4 allocation_ratio=16.0; MEMORY_MB total=257642 reserved=512; DISK_GB total=<<n:500-4000>> reserved=0
@app ¦ Memory consumption of worker <<n:1-32>> is <<f:0-8>> GB
@app ¦ Server <<n:1-60>> CPU averaged <<n:5-99>>% over the last 5 minutes
@app ¦ Disk space used on /data: <<n:10-999>> GB of 1 TB
@app ¦ Current bandwidth usage is <<n:10-990>> Mbps on uplink <<n:1-4>>
@app ¦ Connection pool at <<n:1-50>>/50 connections
@app ¦ API quota: <<n:100-9999>> of 10,000 requests used today
@app ¦ Storage utilisation for tenant <<n:1-999>> is <<n:1-99>>%
@app ¦ Database size has reached <<n:2-900>> GB
nvidia-smi ¦ gpu=<<n:0-7>> sm=<<n:0-100>>% mem=<<n:0-100>>% fb_used=<<n:100-24000>>MiB temp=<<n:30-85>>C power=<<n:50-350>>W
nginx ¦ <<stub>>
php-fpm ¦ pool www: <<fpm>>
node-api ¦ process memory: <<jsmem>>
go-api ¦ runtime stats goroutines=<<n:10-9000>> <<gomem>> gc_pause_p99=<<f:0-9>>ms
dotnet-counters ¦ cpu-usage=<<n:1-99>> working-set=<<n:100-3000>>MB gc-heap-size=<<n:50-2000>>MB threadpool-thread-count=<<n:4-200>> threadpool-queue-length=<<n:0-50>>
zfs ¦ pool tank: <<zfs>>
lvm ¦ Thin pool vg0/thinpool data usage <<f:10-95>>%, metadata usage <<f:1-40>>%
@app ¦ Swap used <<f:0-4>> GiB of 4.0 GiB
@app ¦ Inode usage on /var: <<inode>>
aws-lambda ¦ REPORT RequestId: <<uuid>>	<<lambda>>
kube-controller-manager ¦ HPA web: current CPU utilization <<n:5-99>>% (target 60%), replicas <<n:2-20>>
@app ¦ Database prod: size <<n:2-900>> GB, <<n:5-400>> active connections, cache hit ratio <<f:90-99>>%
@app ¦ Capacity report for cluster eu-1: <<n:50-200>> of 200 nodes allocated, <<n:10-95>>% of CPU reserved
@app ¦ <<n:1-16>> of 16 job workers busy, <<n:0-2000>> jobs waiting in queue
"""

RES_HOLDOUT = r"""
go-api ¦ gc <<n:10-999>> @<<f:1-999>>s <<n:0-9>>%: 0.0<<n:10-99>>+<<f:1-9>>+0.0<<n:10-99>> ms clock, <<n:2-90>>-><<n:2-90>>-><<n:1-40>> MB, <<n:5-99>> MB goal, 8 P
uptime ¦ <<time>> up <<n:2-300>> days, <<n:1-23>>:<<n:10-59>>,  <<n:1-9>> users,  load average: <<f:0-9>>, <<f:0-9>>, <<f:0-9>>
windows-wmi ¦ Disk C: <<f:50-470>> GB used of 476.9 GB
kubelet ¦ Container api in pod <<ns>>/<<pod>> is using <<f:0-1>>Gi of its 2Gi memory limit
kubelet ¦ eviction manager: observations: memory.available=<<n:100-4000>>Mi nodefs.available=<<n:5-90>>% imagefs.available=<<n:5-90>>%
azure-sql ¦ DTU consumption <<n:5-99>>% (15 minute average) for database orders
aws-cloudwatch ¦ EBS volume vol-0<<hex:16>>: VolumeReadOps <<n:100-9000>>/min, BurstBalance <<n:5-100>>%
memcached ¦ STAT curr_connections <<n:10-900>> STAT bytes <<n:100000000-4000000000>> STAT limit_maxbytes 4294967296 STAT evictions 0
mongod ¦ WiredTiger cache: <<f:1-8>>GB of 8GB in use, dirty <<f:0-9>>%
rabbitmq ¦ Memory high watermark set to 3276 MiB (3435973836 bytes) of 8192 MiB (8589934592 bytes) total
@app ¦ Tenant <<n:1-999>> has consumed <<n:5-99>>% of its monthly compute hours
@app ¦ Backend pool 'imgproc' is running <<n:1-64>> of 64 worker threads
@app ¦ File share \\fs02\projects holds <<f:1-5>> TB, <<n:10-99>>% of its capacity
@app ¦ Current memory footprint of the search service is <<f:1-30>> GB
@app ¦ Network throughput on router edge-<<n:1-4>> averaged <<f:0-9>> Gbps in the last hour
java ¦ Metaspace       used <<n:50-180>>M, committed <<n:190-310>>M, reserved 1.2G
storage-mon ¦ sda: <<n:10-900>> IOPS, <<f:1-200>> MB/s read, <<f:1-200>> MB/s write, queue depth <<f:0-9>>
cloud-sql ¦ Cloud SQL instance prod-db: CPU <<n:1-99>>%, memory <<n:10-99>>%, storage <<n:10-499>>/500 GB
@app ¦ Object store usage this month: <<f:1-99>> TB out of a <<n:100-200>> TB plan
collectd ¦ load/load-relative shortterm=<<f:0-2>> midterm=<<f:0-2>> longterm=<<f:0-2>>; memory/percent-used value=<<f:1-99>>
"""

# --------------------------------------------------------------------------------------------
# User Action
# --------------------------------------------------------------------------------------------
USER_TRAIN = r"""
sshd ~sys ¦ sshd[<<pid>>]: Accepted publickey for <<user>> from <<pip>> port <<port>> ssh2: ED25519 SHA256:<<b64>>
sshd ~sys ¦ sshd[<<pid>>]: Accepted password for <<user>> from <<pip>> port <<port>> ssh2
logind ~sys ¦ systemd-logind[<<pid>>]: New session <<n:1-9999>> of user <<user>>.
logind ~sys ¦ systemd-logind[<<pid>>]: Session <<n:1-9999>> logged out. Waiting for processes to exit.
windows-security ¦ An account was successfully logged on. Subject: Security ID: NULL SID Logon Information: Logon Type: 2 New Logon: Account Name: <<user>> Account Domain: CORP Logon ID: 0x<<hex:6>>
windows-security ¦ An account was logged off. Subject: Account Name: <<user>> Account Domain: CORP Logon ID: 0x<<hex:6>> Logon Type: 3
windows-security ¦ A user account was created. Subject: Account Name: it.<<user2>> Account Domain: CORP New Account: Account Name: <<user>> Account Domain: CORP
cloudtrail ¦ {"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","userIdentity":{"type":"IAMUser","userName":"<<user>>"},"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"Yes"},"sourceIPAddress":"<<ip>>"}
cloudtrail ¦ eventName=DeleteBucket userIdentity.userName=<<user>> requestParameters.bucketName=tmp-exports-<<n:2023-2024>> awsRegion=eu-west-1
gcp-audit ¦ protoPayload.methodName="v1.compute.instances.stop" protoPayload.authenticationInfo.principalEmail="<<email>>" protoPayload.resourceName="projects/web/zones/europe-west1-b/instances/build-runner-<<n:1-9>>"
kube-audit ¦ verb=delete user=<<email>> resource=deployments name=old-api namespace=staging stage=ResponseComplete
github-audit ¦ repo.create: <<user>> created repository acme/infra-modules-<<n:1-9>>
gitlab ¦ <<user>> pushed <<n:1-12>> commits to main in acme/web
@app ¦ User <<user>> updated their profile: changed display name and time zone
@app ¦ User <<n:1000-9999>> changed notification preferences (email: off, sms: on)
@app ¦ Password changed for account <<email>>
@app ¦ User <<n:1000-9999>> exported <<n:10-9000>> contacts to CSV
@app ¦ User <<n:1000-9999>> downloaded invoice INV-2025-<<n:10000-99999>>.pdf
@app ¦ Customer <<n:1000-99999>> added item SKU-<<n:10000-99999>> to the cart
@app ¦ Order <<n:100000-999999>> placed by customer <<n:1000-99999>>
@app ¦ User <<n:1000-9999>> deleted dashboard 'Q<<n:1-4>> funnel'
@app ¦ Administrator <<user>> deactivated user account <<n:1000-9999>>
@app ¦ <<user>> invited <<email>> to workspace 'Marketing' as editor
@app ¦ User <<n:1000-9999>> turned on two-factor authentication
@app ¦ User <<n:1000-9999>> signed out of all devices
@app ¦ User <<n:1000-9999>> logged in via Google SSO
@app ¦ <<user>> logged out (session <<hex:6>>, duration <<n:1-9>>h<<n:10-59>>m)
grafana ¦ logger=http.server t=<<isots>> level=info msg="Successful Login" User=<<email>>
wordpress ¦ User 'editor_<<user>>' published post "Spring sale announcement" (ID <<n:100-9999>>)
jira ¦ <<user>> moved issue OPS-<<n:100-9999>> from 'In Progress' to 'Done'
nextcloud ¦ File "/Documents/Budget 2025.xlsx" shared by <<user>> with <<user2>>
keycloak ¦ type=LOGIN, realmId=acme, clientId=account-console, userId=<<uuid>>, ipAddress=<<ip>>, auth_method=openid-connect, username=<<user>>
keycloak ¦ type=LOGOUT, realmId=acme, clientId=account-console, userId=<<uuid>>, ipAddress=<<ip>>, redirect_uri=https://portal.example.com/
keycloak ¦ type=UPDATE_PASSWORD, realmId=acme, clientId=account-console, userId=<<uuid>>, ipAddress=<<ip>>, username=<<user>>
okta ¦ user.session.start SUCCESS actor=<<email>> client.ipAddress=<<ip>>
salesforce ¦ Setup Audit Trail: <<user>> changed the Opportunity Stage picklist value 'Negotiation' to 'Contract Sent'
@app ¦ Contact record <<n:1000-9999>> updated by user <<n:100-999>>
@app ¦ Account <<n:1000-9999>> closed at the customer's request
useradd ~sys ¦ useradd[<<pid>>]: new user: name=<<user>>, UID=<<uid>>, GID=<<uid>>, home=/home/<<user>>, shell=/bin/bash, from=/dev/pts/<<n:0-9>>
passwd ~sys ¦ passwd[<<pid>>]: pam_unix(passwd:chauthtok): password changed for <<user>>
usermod ~sys ¦ usermod[<<pid>>]: change user '<<user>>' shell from '/bin/sh' to '/bin/bash'
userdel ~sys ¦ userdel[<<pid>>]: delete user '<<user>>'
@app ¦ Customer <<n:10000-99999>> scheduled a transfer of <<n:10-9000>>.00 EUR to payee 'Landlord'
@app ¦ User <<n:1000-9999>> changed the language setting to German
@app ¦ User <<n:1000-9999>> renamed project 'alpha' to 'apollo'
@app ¦ User <<n:1000-9999>> accepted the terms of service v<<n:2-6>>
@app ¦ Subscription upgraded to the Pro plan by user <<n:1000-9999>>
@app ¦ User <<n:1000-9999>> requested a copy of their personal data
@app ¦ User <<n:1000-9999>> cancelled order <<n:100000-999999>>
vsftpd ¦ [<<user>>] OK LOGIN: Client "<<pip>>"
dovecot ~sys ¦ dovecot[<<pid>>]: imap-login: Login: user=<<<email>>>, method=PLAIN, rip=<<ip>>, lip=<<pip>>, mpid=<<pid2>>, TLS, session=<<<b64>>>
dovecot ~sys ¦ dovecot[<<pid>>]: imap(<<email>>)<<<pid2>>><<<b64>>>: Logged out in=<<n:100-9000>> out=<<n:100-90000>>
"""

USER_HOLDOUT = r"""
windows-security ¦ User initiated logoff: Subject: Account Name: <<user>> Account Domain: CORP Logon ID: 0x<<hex:6>>
azure-activity ¦ Microsoft.Compute/virtualMachines/delete by <<email>> on vm-build-0<<n:1-9>>: Succeeded
m365-audit ¦ UserLoggedIn: <<email>> signed in to SharePoint Online from <<ip>>
sshd ~sys ¦ sshd[<<pid>>]: pam_unix(sshd:session): session closed for user <<user>>
chfn ~sys ¦ chfn[<<pid>>]: changed user '<<user>>' information
slack ¦ <<user>> archived channel #launch-2024
confluence ¦ Page "Onboarding checklist" edited by <<user>> (version <<n:2-40>>)
github ¦ <<user>> merged pull request #<<n:10-9999>> into main
@app ¦ Customer <<n:1000-99999>> left a <<n:1-5>>-star review on product <<n:100-9999>>
@app ¦ Shopper <<n:1000-99999>> applied coupon SPRING10 at checkout
@app ¦ Member <<n:1000-9999>> signed in from the mobile app
@app ¦ User <<n:1000-9999>> signed off
@app ¦ Record <<n:1000-9999>> edited by staff member <<n:100-999>>
@app ¦ Customer <<n:1000-99999>> removed the saved card ending <<n:1000-9999>>
@app ¦ User <<n:1000-9999>> switched the theme to dark mode
@app ¦ Employee <<n:1000-9999>> submitted a timesheet for week <<n:1-52>>
auth0 ¦ Success Login - user: <<email>> - connection: google-oauth2
mediawiki ¦ User:<<user>> moved page Draft:Release_plan to Release_plan
@app ¦ Admin '<<user>>' changed the retention policy for project logs-eu from 30 to 90 days
@app ¦ User <<n:1000-9999>> booked a meeting room for Thursday 10:00
"""

LABELS = [
    ("HTTP Status", HTTP_TRAIN, HTTP_HOLDOUT),
    ("Critical Error", CRIT_TRAIN, CRIT_HOLDOUT),
    ("Error", ERR_TRAIN, ERR_HOLDOUT),
    ("Security Alert", SEC_TRAIN, SEC_HOLDOUT),
    ("System Notification", SYS_TRAIN, SYS_HOLDOUT),
    ("Resource Usage", RES_TRAIN, RES_HOLDOUT),
    ("User Action", USER_TRAIN, USER_HOLDOUT),
]
TRAIN_PER_LABEL = 72


def build(entries, total, label):
    rows, seen = [], set()

    def add(entry):
        for _ in range(20):
            source, message = render(entry)
            if message not in seen:
                seen.add(message)
                rows.append((source, message, label))
                return True
        return False

    for entry in entries:
        if not add(entry):
            sys.exit(f"could not render {entry}")
    # Extra instances (other values) of templates that have placeholders, until `total`.
    variable = [e for e in entries if "<<" in e[2] or e[0] == "@app" or e[1]]
    pool = variable[:]
    RNG.shuffle(pool)
    while len(rows) < total and pool:
        add(pool.pop())
    return rows


def main():
    root = Path(__file__).resolve().parent
    train, holdout = [], []
    for label, train_block, holdout_block in LABELS:
        t_entries, h_entries = parse(train_block), parse(holdout_block)
        train += build(t_entries, TRAIN_PER_LABEL, label)
        holdout += build(h_entries, len(h_entries), label)
    RNG.shuffle(train)
    RNG.shuffle(holdout)
    for name, rows in (("extra_labelled.csv", train), ("holdout_eval.csv", holdout)):
        with open(root / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["source", "log_message", "target_label"])
            w.writerows(rows)
        print(f"wrote {root / name}: {len(rows)} rows")


if __name__ == "__main__":
    main()

/*
 * The web page the API serves at / and /ui.
 *
 * One HTML document, src/vigil/ui.html, compiled into the program
 * (cmake/embed.cmake turns it into the byte array api_ui_html): no file
 * to install, nothing loaded from anywhere else. Its inline script polls
 * the read-only API every second (GET /v1/nodes, /v1/health,
 * /v1/events?since=N), so it needs no token and changes nothing, and it
 * puts what it reads into the page as text only, never as markup.
 *
 * The answer carries a Content-Security-Policy that allows nothing but
 * the page's own inline script and style, named by their SHA-256 hashes,
 * and requests to the API itself: no external script, style, image, font
 * or frame, no inline script that is not the one compiled in (so that a
 * node id that somehow became markup still could not run), no form, and
 * no framing of the page by another site. The hashes are computed from
 * the compiled-in page on the first request, so that editing the page
 * never leaves a stale policy behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.h"

/*
 * Writes " 'sha256-BASE64'" for the text between the first open tag and
 * the close tag after it into out; "'none'" (nothing allowed) when the
 * page has no such element.
 */
static void element_hash(const char *page, const char *open, const char *close, char *out,
                         size_t cap)
{
    const char *a = strstr(page, open);
    const char *b = a ? strstr(a + strlen(open), close) : NULL;
    if (!b) {
        snprintf(out, cap, "'none'");
        return;
    }
    a += strlen(open);
    unsigned char h[crypto_hash_sha256_BYTES];
    char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    crypto_hash_sha256(h, (const unsigned char *)a, (unsigned long long)(b - a));
    sodium_bin2base64(b64, sizeof(b64), h, sizeof(h), sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, cap, "'sha256-%s'", b64);
}

/* Fills c->ui_csp and c->ui_headers (once). */
static void ui_prepare(struct api_ctx *c)
{
    const char *page = (const char *)api_ui_html;
    char script[64], style[64];
    element_hash(page, "<script>", "</script>", script, sizeof(script));
    element_hash(page, "<style>", "</style>", style, sizeof(style));
    snprintf(c->ui_csp, sizeof(c->ui_csp),
             "Content-Security-Policy: default-src 'none'; script-src %s; style-src %s; "
             "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
             script, style);
    size_t i = 0;
    c->ui_headers[i++] = "Cache-Control: no-store";
    c->ui_headers[i++] = c->ui_csp;
    c->ui_headers[i++] = "X-Content-Type-Options: nosniff";
    c->ui_headers[i++] = "X-Frame-Options: DENY";
    c->ui_headers[i++] = "Referrer-Policy: no-referrer";
    c->ui_headers[i] = NULL;
}

void api_ui_respond(struct api_ctx *c, struct vio_http_response *resp)
{
    if (!c->ui_headers[0])
        ui_prepare(c);
    /* The server frees the body: a copy of the page (a few KiB). */
    char *body = malloc(api_ui_html_len + 1);
    if (!body) {
        static const char oom[] = "out of memory\n";
        char *copy = malloc(sizeof(oom));
        if (copy)
            memcpy(copy, oom, sizeof(oom));
        resp->status = 500;
        resp->content_type = "text/plain; charset=utf-8";
        resp->body = copy;
        resp->body_len = copy ? sizeof(oom) - 1 : 0;
        return;
    }
    memcpy(body, api_ui_html, api_ui_html_len + 1);
    resp->status = 200;
    resp->content_type = "text/html; charset=utf-8";
    resp->headers = c->ui_headers;
    resp->body = body;
    resp->body_len = api_ui_html_len;
}

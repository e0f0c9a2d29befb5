package gateway

import "strings"

// nginxTemplate is nginx's configuration for forward authentication, as
// docs/gateway.md shows it (a test holds the two equal and runs it in
// front of a real nginx): http://LATCHKEY is Latchkey's URL, http://UPSTREAM
// the API's.
const nginxTemplate = `location / {
    auth_request /_latchkey;
    auth_request_set $lk_status  $upstream_status;
    auth_request_set $lk_retry   $upstream_http_retry_after;
    auth_request_set $lk_subject $upstream_http_x_latchkey_subject;
    auth_request_set $lk_client  $upstream_http_x_latchkey_client_id;
    auth_request_set $lk_scope   $upstream_http_x_latchkey_scope;
    auth_request_set $lk_token   $upstream_http_x_latchkey_token_id;
    error_page 500 = @latchkey_refused;
    proxy_set_header X-Latchkey-Subject   $lk_subject;
    proxy_set_header X-Latchkey-Client-Id $lk_client;
    proxy_set_header X-Latchkey-Scope     $lk_scope;
    proxy_set_header X-Latchkey-Token-Id  $lk_token;
    proxy_set_header Authorization "";
    proxy_set_header DPoP "";
    proxy_pass http://UPSTREAM;
}

location = /_latchkey {
    internal;
    proxy_pass http://LATCHKEY/oauth/check;
    proxy_pass_request_body off;
    proxy_ssl_server_name on;
    proxy_set_header Content-Length "";
    proxy_set_header X-Original-URI    $request_uri;
    proxy_set_header X-Original-Method $request_method;
    proxy_set_header X-Forwarded-Host  $http_host;
    proxy_set_header X-Forwarded-Proto $scheme;
}

location @latchkey_refused {
    default_type application/json;
    add_header Retry-After $lk_retry always;
    if ($lk_status = 429) {
        return 429 '{"error":"slow_down","error_description":"too many requests with this token: slow down"}\n';
    }
    if ($lk_status = 503) {
        return 503 '{"error":"temporarily_unavailable","error_description":"the token cannot be checked right now; try again"}\n';
    }
    return 500;
}
`

// NginxConfig is nginx's configuration for forward authentication in front
// of the API at upstream, asking the Latchkey at latchkey (URLs).
func NginxConfig(latchkey, upstream string) string {
	return strings.NewReplacer("http://LATCHKEY", latchkey, "http://UPSTREAM", upstream).Replace(nginxTemplate)
}

// Package protocol is the vocabulary of the protocols Latchkey speaks: OAuth
// 2.0 error codes (RFC 6749 §4.1.2.1, §5.2; RFC 7009), grant types, response
// types and VK's display modes (vk-wire.md §1). Every layer may import it; it
// imports nothing of Latchkey's.
package protocol

// Error codes Latchkey answers with.
const (
	InvalidRequest          = "invalid_request"
	InvalidClient           = "invalid_client"
	InvalidGrant            = "invalid_grant"
	InvalidScope            = "invalid_scope"
	UnauthorizedClient      = "unauthorized_client"
	UnsupportedGrantType    = "unsupported_grant_type"
	UnsupportedResponseType = "unsupported_response_type"
	AccessDenied            = "access_denied"
	ServerError             = "server_error"
	TemporarilyUnavailable  = "temporarily_unavailable"
	// RFC 8628 §3.5, the device flow's polling answers.
	AuthorizationPending = "authorization_pending"
	SlowDown             = "slow_down"
	ExpiredToken         = "expired_token"
	// RFC 8693 §2.2.2: a target the server cannot issue for.
	InvalidTarget = "invalid_target"
	// RFC 9449 §5: a DPoP proof refused at the token endpoint.
	InvalidDPoPProof = "invalid_dpop_proof"
	// RFC 9449 §8, §9: the proof is to carry the nonce of DPoP-Nonce.
	UseDPoPNonce = "use_dpop_nonce"
)

// Grant types of the token endpoint.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeAccessToken is RFC 8693's name for an access token.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	// GrantImplicit is not a token-endpoint grant; metadata lists it.
	GrantImplicit = "implicit"
)

// Response types of /authorize.
const (
	ResponseCode  = "code"
	ResponseToken = "token"
)

// Display layouts of the dialog. VK's "touch" and "wap" mean mobile.
const (
	DisplayPage   = "page"
	DisplayPopup  = "popup"
	DisplayMobile = "mobile"
)

// Display returns the layout a display parameter asks for: page unless it
// names another.
func Display(v string) string {
	switch v {
	case DisplayPopup, DisplayMobile:
		return v
	case "touch", "wap":
		return DisplayMobile
	}
	return DisplayPage
}

// VKIDLang maps VK ID's lang_id to a page language (vkid-wire.md §1): 0
// Russian, 3 English; "" for others, which get the default.
func VKIDLang(id string) string {
	switch id {
	case "0":
		return "ru"
	case "3":
		return "en"
	}
	return ""
}

// VKIDScheme maps VK ID's scheme to a page theme: "dark" or "light"; ""
// for none.
func VKIDScheme(s string) string {
	switch s {
	case "dark", "space_gray":
		return "dark"
	case "light", "bright_light":
		return "light"
	}
	return ""
}

// PKCE code challenge methods (RFC 7636 §4.2).
const (
	PKCES256  = "S256"
	PKCEPlain = "plain"
)

package server

import "latchkey/internal/platform"

// What each consumer uses of the platform: the services, composed. Each
// consumer declares the methods it needs (oauth.Platform, api.Platform, …);
// these are the services that have them, and nothing else.
type (
	oauthServices struct {
		*platform.Apps
		*platform.Users
		*platform.Communities
		*platform.Tokens
		*platform.Pushed
	}
	apiServices struct {
		*platform.Tokens
		*platform.Consents
		*platform.Platform // Nodes: the cluster's size
	}
	methodsServices struct {
		*platform.Users
		*platform.Communities
		*platform.Tokens
		*platform.Messages
	}
	accountServices struct {
		*platform.Users
		*platform.Consents
		*platform.Tokens
		*platform.Messages
		*platform.Issuer
		*platform.Apps
		*platform.Sessions
		*platform.Factors
		*platform.Upstreams
	}
	authorizeServices struct {
		*platform.Factors
		*platform.Sessions
	}
	kitServices struct {
		*platform.Users
		*platform.Sessions
	}
	communitiesServices struct {
		*platform.Communities
		*platform.Apps
		*platform.Bots
		*platform.Messages
	}
)

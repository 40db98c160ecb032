// Package lambda serves AWS Lambda's control-plane and Invoke API
// (/2015-03-31/functions/…, /2021-10-31/…/url, /2019-09-25/…/event-invoke-config,
// /2016-08-19/account-settings) so that the AWS SDKs and the aws CLI manage
// and invoke Nimbus functions: one function, seen through the Nimbus API
// and through this one.
//
// It is a front end: it checks the caller (SigV4 with the server's
// Credentials, or the cross-site rules when there are none), decodes
// Lambda's requests, calls the functions service (Functions), the engine
// (Invoker) and the async queue (Queue), and encodes Lambda's answers and
// errors. It holds no lifecycle logic of its own: what a function is, how
// versions, aliases, URLs and async settings behave, is the functions
// service's. It knows nothing of the Nimbus API's routes, keys or error
// shape; the api package mounts it (Prefixes) on the same port.
package lambda

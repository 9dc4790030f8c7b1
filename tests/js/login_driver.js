#!/usr/bin/env node
// Drives the real v2 JavaScript client, azure-mobile-apps-client 2.0.1, through sign-in: the
// client-directed login(provider, {id_token}) against a live server, then the per-user
// Inspection table as that user (read, insert), then login(authenticationToken) with the token
// it was given (the client's own "token login"), then logout (local), then a read that the
// server refuses. Every exchange is recorded through a service filter, as driver.js does.
//
// Usage: node login_driver.js <server url> <provider> <id_token>
// Prints one JSON report on stdout: {"ok": bool, "steps": [...], "http": [...]}.
'use strict';

var XMLHttpRequest = require('xhr2');
if (!('withCredentials' in XMLHttpRequest.prototype)) {
    XMLHttpRequest.prototype.withCredentials = false;
}
global.XMLHttpRequest = XMLHttpRequest;

var WindowsAzure = require('azure-mobile-apps-client');

var url = process.argv[2], provider = process.argv[3], idToken = process.argv[4];
if (!url || !provider || !idToken) {
    process.stderr.write('usage: node login_driver.js <server url> <provider> <id_token>\n');
    process.exit(2);
}

var report = { ok: true, steps: [], http: [] };

function recorder(request, next, callback) {
    var entry = { method: request.type, url: request.url, requestHeaders: request.headers };
    report.http.push(entry);
    next(request, function (error, response) {
        var xhr = response || (error && error.request);
        if (xhr) {
            entry.status = xhr.status;
        }
        callback(error, response);
    });
}

function plain(value) {
    return JSON.parse(JSON.stringify(value === undefined ? null : value));
}

function step(name, action) {
    var entry = { name: name };
    report.steps.push(entry);
    return Promise.resolve().then(action).then(function (result) {
        entry.outcome = 'ok';
        entry.result = plain(result);
    }, function (error) {
        entry.outcome = 'error';
        entry.error = { message: String(error && error.message), status: error && error.request && error.request.status };
        try {
            entry.error.body = JSON.parse(error.request.responseText);
        } catch (e) {
            entry.error.body = null;
        }
    });
}

var client = new WindowsAzure.MobileServiceClient(url).withFilter(recorder);
var table = client.getTable('Inspection');
var siteToken = null;

step('login', function () {
    return client.login(provider, { id_token: idToken }).then(function (user) {
        siteToken = user.mobileServiceAuthenticationToken;
        return { userId: user.userId, hasToken: typeof siteToken === 'string' && siteToken.split('.').length === 3 };
    });
}).then(function () {
    return step('read', function () { return table.read(); });
}).then(function () {
    return step('insert', function () { return table.insert({ site: 'from-js', pipeId: 'js-1', condition: 'worn' }); });
}).then(function () {
    return step('read_after_insert', function () { return table.read(); });
}).then(function () {
    client.logout();
    return step('read_signed_out', function () { return table.read(); });
}).then(function () {
    return step('login_with_token', function () {
        return client.login(siteToken).then(function (user) { return { userId: user.userId }; });
    });
}).then(function () {
    return step('read_again', function () { return table.read(); });
}).then(function () {
    report.ok = report.steps.every(function (s) { return s.outcome === 'ok' || s.name === 'read_signed_out'; });
    process.stdout.write(JSON.stringify(report));
    process.exit(report.ok ? 0 : 1);
}).catch(function (error) {
    report.ok = false;
    report.fatal = String(error && error.stack || error);
    process.stdout.write(JSON.stringify(report));
    process.exit(2);
});

#!/usr/bin/env node
// A device on the real v2 JavaScript client (azure-mobile-apps-client 2.0.1) moving servers through
// its offline sync context: the context, its operation queue and its SQLite store, exactly as a
// Cordova app runs them. tests/test_import_node.py drives it in two phases over one store file:
//
//   node migrate.js before <old server url> <store file> <sqlite3 module dir>
//       pull the Task table from the old server, then, offline, insert a row, update one and
//       delete one (queued, not pushed);
//   node migrate.js after <new server url> <store file> <sqlite3 module dir>
//       push the queue to the new server, pull, and read the local table.
//
// Prints one JSON report: {"ok": bool, "phase", "conflicts", "errors", "local": [...], "http": [...]}.
//
// The client's store (sdk/src/Platform/cordova/MobileServiceSqliteStore.js) runs on the Cordova
// plugin cordova-sqlite-storage. In Node, `window.sqlitePlugin` below gives it the same API over the
// sqlite3 module the reference server installs (bench/peer): openDatabase, transaction (statements
// queued by the callback and by statement callbacks, in one BEGIN ... COMMIT, rolled back on any
// error) and executeSql, with result sets of the WebSQL shape (rows.length, rows.item(i)).
'use strict';

var XMLHttpRequest = require('xhr2');
if (!('withCredentials' in XMLHttpRequest.prototype)) {
    XMLHttpRequest.prototype.withCredentials = false;
}
global.XMLHttpRequest = XMLHttpRequest;

var phase = process.argv[2], url = process.argv[3], storeFile = process.argv[4], sqliteDir = process.argv[5];
if (['before', 'after'].indexOf(phase) < 0 || !url || !storeFile || !sqliteDir) {
    process.stderr.write('usage: node migrate.js before|after <server url> <store file> <sqlite3 module dir>\n');
    process.exit(2);
}
var sqlite3 = require(sqliteDir);

// -- cordova-sqlite-storage's API over node sqlite3 ------------------------------------------------

function resultSet(rows, info) {
    rows = rows || [];
    return {
        rows: { length: rows.length, item: function (i) { return rows[i]; } },
        rowsAffected: info ? info.changes : 0,
        insertId: info ? info.lastID : undefined
    };
}

function openDatabase(options, success, error) {
    var raw = new sqlite3.Database(options.name, function (err) {
        if (err) { return error && error(err); }
        success && success(db);
    });
    var chain = Promise.resolve(); // one transaction or statement at a time, in call order

    function exec(sql, params) {
        return new Promise(function (resolve, reject) {
            if (/^\s*(select|pragma)/i.test(sql)) {
                raw.all(sql, params || [], function (err, rows) { return err ? reject(err) : resolve(resultSet(rows)); });
            } else {
                raw.run(sql, params || [], function (err) { return err ? reject(err) : resolve(resultSet([], this)); });
            }
        });
    }

    function serial(work) {
        var result = chain.then(work);
        chain = result.then(function () {}, function () {});
        return result;
    }

    var db = {
        transaction: function (fn, onError, onSuccess) {
            serial(function () {
                var queue = [];
                var tx = {
                    executeSql: function (sql, params, ok, fail) { queue.push([sql, params, ok, fail]); }
                };
                function next() {
                    if (!queue.length) { return Promise.resolve(); }
                    var statement = queue.shift();
                    return exec(statement[0], statement[1]).then(function (rs) {
                        if (statement[2]) { statement[2](tx, rs); }
                        return next();
                    }, function (err) {
                        if (statement[3]) { statement[3](tx, err); }
                        throw err;
                    });
                }
                return exec('BEGIN').then(function () {
                    fn(tx);
                    return next();
                }).then(function () {
                    return exec('COMMIT');
                }).then(function () {
                    if (onSuccess) { onSuccess(); }
                }, function (err) {
                    return exec('ROLLBACK').then(null, function () {}).then(function () {
                        if (onError) { onError(err); }
                    });
                });
            });
        },
        executeSql: function (sql, params, ok, fail) {
            serial(function () {
                return exec(sql, params).then(function (rs) { if (ok) { ok(rs); } }, function (err) { if (fail) { fail(err); } });
            });
        },
        close: function (ok, fail) {
            serial(function () {
                return new Promise(function (resolve) {
                    raw.close(function (err) {
                        if (err) { if (fail) { fail(err); } } else if (ok) { ok(); }
                        resolve();
                    });
                });
            });
        }
    };
    return db;
}

global.window = { sqlitePlugin: { openDatabase: openDatabase } };

// -- the device ---------------------------------------------------------------------------------------

var WindowsAzure = require('azure-mobile-apps-client');
var MobileServiceSqliteStore = require('azure-mobile-apps-client/sdk/src/Platform/cordova/MobileServiceSqliteStore');
var Query = require('azure-query-js').Query;

var report = { ok: true, phase: phase, conflicts: [], errors: [], http: [] };

function recorder(request, next, callback) {
    var entry = { method: request.type, url: request.url, ifMatch: (request.headers || {})['If-Match'] || null };
    report.http.push(entry);
    next(request, function (error, response) {
        var xhr = response || (error && error.request);
        entry.status = xhr ? xhr.status : null;
        if (xhr && entry.method === 'GET' && xhr.status === 200) {
            try {
                var body = JSON.parse(xhr.responseText);
                entry.rows = (Array.isArray(body) ? body : body.results || []).map(function (row) { return row.id; });
            } catch (e) { /* not a page */ }
        }
        callback(error, response);
    });
}

var client = new WindowsAzure.MobileServiceClient(url).withFilter(recorder);
var store = new MobileServiceSqliteStore(storeFile);
var context = client.getSyncContext();
var table = client.getSyncTable('Task');

function fail(what) {
    return function (error) {
        report.ok = false;
        report.errors.push(what + ': ' + String(error && (error.stack || error.message) || error));
    };
}

function readLocal() {
    return table.read(new Query('Task').orderBy('id')).then(function (rows) {
        report.local = rows;
    });
}

function before() {
    return context.pull(new Query('Task'), 'all-tasks').then(function () {
        return table.insert({ id: 'js-offline-new', text: 'written offline in JS', priority: 77, complete: false });
    }).then(function () {
        return table.lookup('task-04');
    }).then(function (item) {
        report.baseVersion = item.version;
        item.text = 'task 4 edited offline in JS';
        item.complete = true;
        return table.update(item);
    }).then(function () {
        return table.lookup('task-09');
    }).then(function (item) {
        return table.del(item);
    }).then(readLocal, fail('before'));
}

function after() {
    return context.push().then(function (conflicts) {
        report.conflicts = (conflicts || []).map(function (c) {
            return { id: c.getAction && c.getAction(), error: String(c.getError && c.getError()) };
        });
        report.pushRequests = report.http.length;
        return context.pull(new Query('Task'), 'all-tasks');
    }).then(readLocal, fail('after'));
}

function finish(code) {
    process.stdout.write(JSON.stringify(report, null, 1) + '\n', function () { process.exit(code); });
}

store.defineTable({
    name: 'Task',
    columnDefinitions: {
        id: 'string', text: 'string', complete: 'boolean', priority: 'integer', dueDate: 'date',
        createdAt: 'date', updatedAt: 'date', version: 'string', deleted: 'boolean'
    }
}).then(function () {
    return context.initialize(store);
}).then(phase === 'before' ? before : after).then(function () {
    finish(report.ok ? 0 : 1);
}, function (error) {
    fail('fatal')(error);
    finish(2);
});

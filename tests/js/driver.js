#!/usr/bin/env node
// Drives the real v2 JavaScript client, azure-mobile-apps-client 2.0.1, from Node against a live
// server: insert (with and without id), a query with where/orderBy/skip/take/includeTotalCount,
// lookup, refresh, update with its version (If-Match), a conflict on a stale version, delete, the
// reads after the delete, paging through the Link header, and the client's own incremental pull.
//
// Usage: node driver.js <server url>   (or OFFLINE_SYNC_URL=<server url> node driver.js)
//
// Prints one JSON report on stdout: {"ok": bool, "steps": [...], "http": [...]}. Each step holds
// what the client returned (items, or the error's status, message and server item); "http" holds
// every exchange as the client saw it through a service filter (method, url, request headers,
// status, response headers). Exits 1 if any step's result is not what docs/protocol.rst says, 2 if
// the driver itself failed.
'use strict';

// The client was written for browsers and Cordova. In Node it needs an XMLHttpRequest; its
// transport picks XHR only where the object has `withCredentials` (its CORS feature test), which
// xhr2 lacks, so the shim adds the property. localStorage is optional (it falls back to memory).
var XMLHttpRequest = require('xhr2');
if (!('withCredentials' in XMLHttpRequest.prototype)) {
    XMLHttpRequest.prototype.withCredentials = false;
}
global.XMLHttpRequest = XMLHttpRequest;

var WindowsAzure = require('azure-mobile-apps-client');

var url = process.argv[2] || process.env.OFFLINE_SYNC_URL;
if (!url) {
    process.stderr.write('usage: node driver.js <server url>\n');
    process.exit(2);
}

var TABLE = 'Task';
var report = { ok: true, client: require('azure-mobile-apps-client/package.json').version, steps: [], http: [] };

// Every request and response as the client sees them (a service filter is the client's own hook).
function recorder(request, next, callback) {
    var entry = { method: request.type, url: request.url, requestHeaders: request.headers, body: request.data || null };
    report.http.push(entry);
    next(request, function (error, response) {
        var xhr = response || (error && error.request);
        if (xhr) {
            entry.status = xhr.status;
            entry.responseHeaders = parseHeaders(xhr.getAllResponseHeaders());
        } else {
            entry.error = String(error);
        }
        callback(error, response);
    });
}

function parseHeaders(text) {
    var headers = {};
    (text || '').split(/\r?\n/).forEach(function (line) {
        var i = line.indexOf(':');
        if (i > 0) {
            headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
        }
    });
    return headers;
}

// Dates come back from the client as Date objects (it parses ISO strings); report them as strings.
function plain(value) {
    return JSON.parse(JSON.stringify(value === undefined ? null : value));
}

function lastExchange() {
    return report.http[report.http.length - 1] || {};
}

// Runs one step: `action` returns the client's promise; `check` returns a list of failures.
function step(name, action, check) {
    var entry = { name: name };
    report.steps.push(entry);
    var before = report.http.length;
    return Promise.resolve()
        .then(action)
        .then(function (result) {
            entry.outcome = 'ok';
            entry.result = plain(result);
            if (Array.isArray(result)) {
                entry.totalCount = result.totalCount === undefined ? null : result.totalCount;
            }
            return result;
        }, function (error) {
            entry.outcome = 'error';
            entry.error = {
                message: error && error.message,
                status: error && error.request ? error.request.status : null,
                responseText: error && error.request ? error.request.responseText : null,
                serverInstance: error && error.serverInstance !== undefined ? plain(error.serverInstance) : null,
            };
            return error;
        })
        .then(function (value) {
            entry.http = report.http.slice(before).map(function (h) {
                return { method: h.method, url: h.url, status: h.status };
            });
            var exchange = report.http.length > before ? lastExchange() : {};
            var failures = check(value, entry, exchange) || [];
            if (failures.length) {
                entry.failures = failures;
                report.ok = false;
            }
            return value;
        });
}

function expect(failures, condition, message) {
    if (!condition) {
        failures.push(message);
    }
}

function expectOk(entry, status, exchange) {
    var failures = [];
    expect(failures, entry.outcome === 'ok', 'expected success, got ' + JSON.stringify(entry.error));
    expect(failures, exchange.status === status, 'expected HTTP ' + status + ', got ' + exchange.status);
    return failures;
}

function expectError(entry, status) {
    var failures = [];
    expect(failures, entry.outcome === 'error', 'expected an error, got success');
    expect(failures, entry.error && entry.error.status === status,
        'expected status ' + status + ', got ' + (entry.error && entry.error.status));
    return failures;
}

function expectItem(failures, item) {
    expect(failures, item && typeof item.id === 'string' && item.id.length > 0, 'id is a non-empty string');
    expect(failures, item && typeof item.version === 'string' && item.version.length > 0, 'version is a string');
    expect(failures, item && item.updatedAt instanceof Date, 'updatedAt parsed as a date');
    expect(failures, item && item.createdAt instanceof Date, 'createdAt parsed as a date');
    expect(failures, item && item.deleted === false, 'deleted is false');
}

function ids(items) {
    return (items || []).map(function (item) { return item.id; });
}

function main() {
    var client = new WindowsAzure.MobileServiceClient(url).withFilter(recorder);
    var table = client.getTable(TABLE);
    var s = {};
    var due = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));

    return Promise.resolve()
        .then(function () {
            return step('insert_without_id', function () {
                return table.insert({ text: 'js-alpha', priority: 1, complete: false, dueDate: due });
            }, function (item, entry, http) {
                var failures = expectOk(entry, 201, http);
                expectItem(failures, item);
                expect(failures, item.text === 'js-alpha' && item.priority === 1, 'columns round-trip');
                expect(failures, item.dueDate instanceof Date && item.dueDate.getTime() === due.getTime(),
                    'dueDate round-trips to the millisecond');
                expect(failures, http.responseHeaders.etag === '"' + item.version + '"', 'ETag is the quoted version');
                s.alpha = item;
                return failures;
            });
        })
        .then(function () {
            return step('insert_with_id', function () {
                return table.insert({ id: 'js-fixed-1', text: 'js-bravo', priority: 2 });
            }, function (item, entry, http) {
                var failures = expectOk(entry, 201, http);
                expectItem(failures, item);
                expect(failures, item.id === 'js-fixed-1', 'the client id is kept');
                s.bravo = item;
                return failures;
            });
        })
        .then(function () {
            var rows = [
                { id: 'js-c', text: 'js-charlie', priority: 3 },
                { id: 'js-d', text: 'js-delta', priority: 4, complete: true },
                { id: 'js-e', text: 'js-echo', priority: 5 },
                { id: 'js-f', text: 'js-foxtrot', priority: 6 },
            ];
            return rows.reduce(function (chain, row) {
                return chain.then(function () {
                    return step('insert_' + row.id, function () {
                        return table.insert(row);
                    }, function (item, entry, http) {
                        var failures = expectOk(entry, 201, http);
                        expectItem(failures, item);
                        return failures;
                    });
                });
            }, Promise.resolve());
        })
        .then(function () {
            return step('insert_duplicate_id', function () {
                return table.insert({ id: 'js-fixed-1', text: 'again' });
            }, function (error, entry) {
                // docs/protocol.rst §5: a duplicate id is a 409.
                return expectError(entry, 409);
            });
        })
        .then(function () {
            // where (an object and a function), orderBy + thenBy, skip, take, includeTotalCount.
            return step('query', function () {
                return table
                    .where({ complete: false })
                    .where(function (min) { return this.priority >= min; }, 2)
                    .orderByDescending('priority')
                    .skip(1)
                    .take(2)
                    .includeTotalCount()
                    .read();
            }, function (items, entry, http) {
                // Not complete and priority >= 2: bravo(2), charlie(3), echo(5), foxtrot(6) → 4 in all;
                // descending, skip 1, take 2: echo, charlie.
                var failures = expectOk(entry, 200, http);
                expect(failures, Array.isArray(items), 'an array');
                expect(failures, JSON.stringify(ids(items)) === JSON.stringify(['js-e', 'js-c']),
                    'ids in order: ' + JSON.stringify(ids(items)));
                expect(failures, items.totalCount === 4, 'totalCount 4, got ' + items.totalCount);
                (items || []).forEach(function (item) { expectItem(failures, item); });
                expect(failures, /\$inlinecount=allpages/.test(decodeURIComponent(http.url)), 'asked for the count');
                return failures;
            });
        })
        .then(function () {
            return step('query_string_function', function () {
                return table
                    .where(function () { return this.text.indexOf('js-') === 0 && this.text !== 'js-alpha'; })
                    .orderBy('text')
                    .select('id', 'text', 'version')
                    .read();
            }, function (items, entry, http) {
                var failures = expectOk(entry, 200, http);
                var inTextOrder = ['js-fixed-1', 'js-c', 'js-d', 'js-e', 'js-f'];
                expect(failures, JSON.stringify(ids(items)) === JSON.stringify(inTextOrder),
                    'ids in text order: ' + JSON.stringify(ids(items)));
                expect(failures, items.totalCount === undefined, 'no count unless asked');
                return failures;
            });
        })
        .then(function () {
            return step('lookup', function () { return table.lookup(s.alpha.id); }, function (item, entry, http) {
                var failures = expectOk(entry, 200, http);
                expectItem(failures, item);
                expect(failures, item.version === s.alpha.version, 'lookup version equals the insert version');
                expect(failures, item.text === 'js-alpha', 'lookup text');
                return failures;
            });
        })
        .then(function () {
            return step('refresh', function () { return table.refresh({ id: s.bravo.id, text: 'stale local' }); },
                function (item, entry, http) {
                    var failures = expectOk(entry, 200, http);
                    expectItem(failures, item);
                    expect(failures, item.text === 'js-bravo', 'refresh brings the server text');
                    return failures;
                });
        })
        .then(function () {
            var local = Object.assign({}, s.alpha, { text: 'js-alpha updated', priority: 7 });
            return step('update_with_version', function () {
                return table.update(local);
            }, function (item, entry, http) {
                var failures = expectOk(entry, 200, http);
                var sent = lastExchange();
                expect(failures, sent.method === 'PATCH', 'update is a PATCH');
                expect(failures, sent.requestHeaders['If-Match'] === '"' + s.alpha.version + '"',
                    'If-Match carries the version: ' + sent.requestHeaders['If-Match']);
                expectItem(failures, item);
                expect(failures, item.text === 'js-alpha updated' && item.priority === 7, 'update applied');
                expect(failures, item.version !== s.alpha.version, 'version changed');
                expect(failures, item.updatedAt.getTime() >= s.alpha.updatedAt.getTime(), 'updatedAt did not go back');
                expect(failures, http.responseHeaders.etag === '"' + item.version + '"', 'ETag is the quoted version');
                s.alphaUpdated = item;
                return failures;
            });
        })
        .then(function () {
            var stale = Object.assign({}, s.alpha, { text: 'js-alpha stale write' });
            return step('update_conflict', function () { return table.update(stale); }, function (error, entry, http) {
                // docs/protocol.rst §6.2: If-Match sent and stale → 412 with the server item.
                var failures = expectError(entry, 412);
                var server = error && error.serverInstance;
                expect(failures, server && server.id === s.alpha.id, 'error.serverInstance is the server item');
                expect(failures, server && server.version === s.alphaUpdated.version,
                    'serverInstance carries the current version');
                expect(failures, server && server.text === 'js-alpha updated',
                    'serverInstance carries the current text');
                expect(failures, (http.responseHeaders || {}).etag === '"' + s.alphaUpdated.version + '"',
                    'conflict ETag is the current version');
                return failures;
            });
        })
        .then(function () {
            // Client wins (docs/protocol.rst §9): copy the server version into the item and retry.
            var retry = Object.assign({}, s.alpha, { text: 'js-alpha client wins', version: s.alphaUpdated.version });
            return step('update_retry_after_conflict', function () { return table.update(retry); },
                function (item, entry, http) {
                    var failures = expectOk(entry, 200, http);
                    expect(failures, item.text === 'js-alpha client wins', 'retry applied');
                    expect(failures, item.version !== s.alphaUpdated.version, 'version changed again');
                    s.alphaFinal = item;
                    return failures;
                });
        })
        .then(function () {
            return step('update_without_version', function () {
                return table.update({ id: s.bravo.id, text: 'js-bravo unconditional' });
            }, function (item, entry, http) {
                // docs/protocol.rst §9(b): an update without If-Match overwrites.
                var failures = expectOk(entry, 200, http);
                expect(failures, !('If-Match' in lastExchange().requestHeaders), 'no If-Match without a version');
                expect(failures, item.text === 'js-bravo unconditional', 'update applied');
                expect(failures, item.version !== s.bravo.version, 'version changed');
                return failures;
            });
        })
        .then(function () {
            return step('delete_conflict', function () {
                return table.del({ id: s.alpha.id, version: s.alpha.version });
            }, function (error, entry) {
                var failures = expectError(entry, 412);
                var server = error && error.serverInstance;
                expect(failures, server && server.version === s.alphaFinal.version,
                    'serverInstance on a stale delete');
                return failures;
            });
        })
        .then(function () {
            return step('delete', function () { return table.del({ id: s.alpha.id, version: s.alphaFinal.version }); },
                function (result, entry, http) {
                    // docs/protocol.rst §7: 204 by default.
                    var failures = expectOk(entry, 204, http);
                    expect(failures, lastExchange().requestHeaders['If-Match'] === '"' + s.alphaFinal.version + '"',
                        'delete sends If-Match');
                    return failures;
                });
        })
        .then(function () {
            return step('delete_without_version', function () { return table.del({ id: 'js-f' }); },
                function (result, entry, http) { return expectOk(entry, 204, http); });
        })
        .then(function () {
            return step('delete_again', function () { return table.del({ id: s.alpha.id }); },
                function (error, entry) { return expectError(entry, 404); });
        })
        .then(function () {
            return step('lookup_deleted', function () { return table.lookup(s.alpha.id); },
                function (error, entry) { return expectError(entry, 404); });
        })
        .then(function () {
            return step('update_deleted', function () { return table.update({ id: s.alpha.id, text: 'zombie' }); },
                function (error, entry) { return expectError(entry, 404); });
        })
        .then(function () {
            return step('query_after_delete', function () {
                return table.orderBy('id').includeTotalCount().read();
            }, function (items, entry, http) {
                var failures = expectOk(entry, 200, http);
                expect(failures, JSON.stringify(ids(items)) === JSON.stringify(['js-c', 'js-d', 'js-e', 'js-fixed-1']),
                    'live ids: ' + JSON.stringify(ids(items)));
                expect(failures, items.totalCount === 4, 'totalCount 4, got ' + items.totalCount);
                return failures;
            });
        })
        .then(function () {
            return step('query_include_deleted', function () {
                return table.where({ deleted: true }).orderBy('id').read({ __includeDeleted: true });
            }, function (items, entry, http) {
                var failures = expectOk(entry, 200, http);
                expect(failures, JSON.stringify(ids(items)) === JSON.stringify([s.alpha.id, 'js-f'].sort()),
                    'tombstones: ' + JSON.stringify(ids(items)));
                (items || []).forEach(function (item) {
                    expect(failures, item.deleted === true, item.id + ' is deleted');
                    if (item.id === s.alpha.id) {
                        expect(failures, item.version !== s.alphaFinal.version, 'the delete bumped the version');
                        expect(failures, item.updatedAt.getTime() >= s.alphaFinal.updatedAt.getTime(),
                            'the delete did not move updatedAt back');
                    }
                });
                return failures;
            });
        })
        .then(function () {
            // More rows than one server page (v2 default 50, docs/protocol.rst §3.3), to follow the Link header.
            var chain = Promise.resolve();
            for (var i = 0; i < PAGE_ROWS; i++) {
                chain = chain.then(insertPageRow.bind(null, table, i));
            }
            return step('insert_page_rows', function () { return chain; }, function () {
                return pageInsertFailures;
            });
        })
        .then(function () { return pagingSteps(table, 'id', 'paging_keyset'); })
        .then(function () { return pagingSteps(table, 'priority', 'paging_skip'); })
        .then(function () { return pullSteps(client, table); });
}

// The client's own incremental pull (sync/pull.js), run with an in-memory local store: the client
// ships a store only for Cordova (SQLite), and pull needs just lookup/upsert/del of it.
function memoryStore() {
    var tables = {};
    function rows(name) {
        tables[name] = tables[name] || {};
        return tables[name];
    }
    return {
        tables: tables,
        defineTable: function () { return Promise.resolve(); },
        lookup: function (name, id) { return Promise.resolve(rows(name)[id] || null); },
        upsert: function (name, record) {
            rows(name)[record.id] = Object.assign({}, record);
            return Promise.resolve();
        },
        del: function (name, id) {
            delete rows(name)[id];
            return Promise.resolve();
        },
    };
}

function pullSteps(client, table) {
    var createPullManager = require('azure-mobile-apps-client/sdk/src/sync/pull').createPullManager;
    var taskRunner = require('azure-mobile-apps-client/sdk/src/Utilities/taskRunner');
    var Query = WindowsAzure.Query;
    var store = memoryStore();
    var noPendingOperations = { readPendingOperations: function () { return Promise.resolve([]); } };
    var puller = createPullManager(client, store, taskRunner(), noPendingOperations);

    function pull(name, check) {
        return step(name, function () {
            return puller.pull(new Query('Task'), 'all-tasks', { pageSize: 10 }).then(function () {
                return Object.keys(store.tables.Task || {}).sort();
            });
        }, function (local, entry) {
            var failures = [];
            expect(failures, entry.outcome === 'ok', 'pull failed: ' + JSON.stringify(entry.error));
            var token = (store.tables.__pulltime || {})['all-tasks'];
            entry.token = token ? token.value : null;
            return failures.concat(check(local || [], entry));
        });
    }

    var live = ['js-c', 'js-d', 'js-e', 'js-fixed-1'];
    for (var i = 0; i < PAGE_ROWS; i++) {
        live.push(pageId(i));
    }
    live.sort();
    return puller.initialize()
        .then(function () {
            return pull('pull_initial', function (local, entry) {
                var failures = [];
                expect(failures, JSON.stringify(local) === JSON.stringify(live), 'the store holds every live row');
                // 58 rows (2 tombstones) in pages of 10. Each page after the first starts again at the
                // last row seen (updatedAt ge token, docs/protocol.rst §4.2): 10 + 5 x 9 + 3 rows, then a page
                // holding only that boundary row, then $skip=1 past it, which is empty and ends the pull.
                expect(failures, entry.http.length === 9, 'pages requested: ' + entry.http.length);
                expect(failures, /\$skip=1&/.test(entry.http[entry.http.length - 1].url), 'the pull ends with $skip');
                return failures;
            });
        })
        .then(function () {
            return table.lookup('js-c').then(function (item) {
                return table.update({ id: 'js-c', version: item.version, text: 'js-charlie pulled' });
            }).then(function () {
                return table.del({ id: 'js-d' });
            }).then(function () {
                return table.insert({ id: 'js-g', text: 'js-golf' });
            });
        })
        .then(function () {
            return pull('pull_incremental', function (local, entry) {
                var failures = [];
                var expected = live.filter(function (id) { return id !== 'js-d'; }).concat(['js-g']).sort();
                expect(failures, JSON.stringify(local) === JSON.stringify(expected), 'the store follows the changes');
                expect(failures, store.tables.Task['js-c'].text === 'js-charlie pulled', 'the update was pulled');
                // Only rows at or after the saved token come back: the first pull's last row (ge,
                // docs/protocol.rst §4.4) and the three changes; then the boundary row alone, then empty.
                expect(failures, entry.http.length === 3, 'pages requested: ' + entry.http.length);
                expect(failures, /updatedAt ge datetimeoffset'/.test(decodeURIComponent(entry.http[0].url)),
                    'the filter starts at the saved token: ' + entry.http[0].url);
                return failures;
            });
        });
}

var PAGE_ROWS = 52;
var pageInsertFailures = [];

function pageId(i) {
    return 'page-' + (i < 10 ? '0' : '') + i;
}

function insertPageRow(table, i) {
    // priority runs opposite to id, so the two orders differ.
    return table.insert({ id: pageId(i), text: 'page', priority: 1000 - i }).then(null, function (error) {
        pageInsertFailures.push(pageId(i) + ': ' + (error && error.message));
    });
}

// Reads the page rows in `order` without a take: the server returns its page size and a Link
// header, which the client exposes as `results.nextLink`; reading that URL gives the rest.
function pagingSteps(table, order, name) {
    var expected = [];
    for (var i = 0; i < PAGE_ROWS; i++) {
        expected.push(pageId(i));
    }
    if (order === 'priority') {
        expected.reverse();
    }
    var first;
    return step(name + '_first', function () {
        return table.where({ text: 'page' }).orderBy(order).includeTotalCount().read();
    }, function (items, entry, http) {
        var failures = expectOk(entry, 200, http);
        expect(failures, items.length === 50, 'a first page of 50, got ' + items.length);
        expect(failures, JSON.stringify(ids(items)) === JSON.stringify(expected.slice(0, 50)), 'first page in order');
        expect(failures, items.totalCount === PAGE_ROWS, 'totalCount ' + PAGE_ROWS + ', got ' + items.totalCount);
        expect(failures, typeof items.nextLink === 'string',
            'the client found the Link header: ' + http.responseHeaders.link);
        entry.nextLink = items.nextLink || null;
        first = items;
        return failures;
    }).then(function () {
        if (!first || typeof first.nextLink !== 'string') {
            return null;
        }
        return step(name + '_next', function () { return table.read(first.nextLink); }, function (items, entry, http) {
            var failures = expectOk(entry, 200, http);
            expect(failures, JSON.stringify(ids(items)) === JSON.stringify(expected.slice(50)),
                'the rest in order: ' + JSON.stringify(ids(items)));
            expect(failures, items.nextLink === undefined || items.nextLink === null, 'no link after the last page');
            return failures;
        });
    });
}

// stdout may be a pipe, where writes are asynchronous: exit only once the report is out.
function finish(code) {
    process.stdout.write(JSON.stringify(report, null, 1) + '\n', function () {
        process.exit(code);
    });
}

main().then(function () {
    finish(report.ok ? 0 : 1);
}, function (error) {
    report.ok = false;
    report.fatal = String(error && error.stack || error);
    finish(2);
});

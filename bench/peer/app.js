// The reference Node.js server (azure-mobile-apps 4.0.2 on express 4) serving the benchmark Task
// table from a SQLite file, so the benches can drive it with the same loops as our site.
//
//   PORT=8123 PEER_DB=/path/task.sqlite node app.js
//
// Page sizes: pageSize 1000 / maxTop 1000, so a client's $top (50 for the JS client, 1000 for the
// bulk loop) decides the page, as take = min(pageSize, $top) (docs/protocol.rst §3.3).
'use strict';

var express = require('express'),
    azureMobileApps = require('azure-mobile-apps');

var port = parseInt(process.env.PORT || '8123', 10),
    filename = process.env.PEER_DB || 'peer.sqlite';

var app = express(),
    mobileApp = azureMobileApps({
        homePage: false,
        swagger: false,
        pageSize: 1000,
        maxTop: 1000,
        logging: { level: process.env.PEER_LOG_LEVEL || 'warn' },
        data: { provider: 'sqlite', filename: filename, dynamicSchema: false }
    });

function addTable(indexed) {
    mobileApp.tables.add('Task', {
        softDelete: true,
        dynamicSchema: false,
        columns: { text: 'string', complete: 'boolean', priority: 'number', dueDate: 'date' },
        // The same (updatedAt, id) index our tables carry, so neither side pays for a sort.
        // Only on a new file: the provider re-runs CREATE INDEX (without IF NOT EXISTS) on every start.
        indexes: indexed ? undefined : [['updatedAt', 'id']]
    });
}

var probe = new (require('sqlite3').Database)(filename);
probe.get("SELECT 1 AS found FROM sqlite_master WHERE type = 'index' AND name = 'updatedAt,id'", function (err, row) {
    probe.close(function () {
        addTable(!err && row && row.found === 1);
        start();
    });
});

function start() {
    mobileApp.tables.initialize().then(function () {
        app.use(mobileApp);
        var server = app.listen(port, '127.0.0.1', function () {
            console.log('peer listening on 127.0.0.1:' + port + ' db=' + filename);
        });
        var stop = function () {
            server.close(function () { process.exit(0); });
            setTimeout(function () { process.exit(0); }, 2000);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
    }).catch(function (error) {
        console.error(error);
        process.exit(1);
    });
}

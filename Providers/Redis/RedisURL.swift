import AbstractBackend

/// Parsing, printing and redaction of `REDIS_URL` values.
///
/// Accepted forms:
/// - `redis://[user[:password]@]host[:port][/db][?db=N]`, host a name, an IPv4 address or an IPv6
///   address in brackets; port 6379 and database 0 by default.
/// - `unix://[user[:password]@]/path/to/redis.sock[?db=N]`.
///
/// User name, password and socket path are percent-decoded. The user information ends at the
/// *last* `@`, so an unencoded `@` or `/` in a password still works (as with Python's urllib for
/// `@`). No error message ever contains the password: every URL in a message is redacted, and
/// parts that might be a password (such as a non-numeric port) are not echoed.
enum RedisURL {
    struct Parsed: Hashable {
        var endpoint: RedisConfiguration.Endpoint
        var username: String?
        var password: String?
        var database: Int
    }

    static let forms = "redis://[user[:password]@]host[:port][/db] or unix:///path/to/redis.sock[?db=N]"

    // MARK: Parsing

    static func parse(_ url: String, variable: String) throws(MessageQueueError) -> Parsed {
        func fail(_ problem: String) -> MessageQueueError {
            MessageQueueError(.invalidConfiguration, "\(variable)=\(quoted(redacted(url))) \(problem)")
        }

        guard let separator = url.firstRange(of: "://"), isScheme(url[..<separator.lowerBound]) else {
            throw fail("is not a Redis URL; use \(forms)")
        }
        let scheme = url[..<separator.lowerBound].lowercased()
        var rest = url[separator.upperBound...]

        switch scheme {
        case "redis", "unix": break
        case "rediss":
            throw RedisConfiguration.tlsUnsupported("\(variable)=\(quoted(redacted(url))) asks for TLS (rediss://)")
        default:
            throw fail("has the unknown scheme \"\(scheme)://\"; use \(forms)")
        }

        // User information: everything before the last "@".
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let rawUser = userinfo.prefix { $0 != ":" }
            if rawUser.contains(where: { "/?#".contains($0) }) {
                throw fail("has an \"@\" after the host; write \"@\" in a user name or password as %40")
            }
            guard let user = PercentEncoding.decode(rawUser) else {
                throw fail("has an invalid percent-encoding in the user name; write \"%\" as %25")
            }
            username = user.isEmpty ? nil : user
            if rawUser.endIndex < userinfo.endIndex {
                guard let secret = PercentEncoding.decode(userinfo[userinfo.index(after: rawUser.endIndex)...]) else {
                    throw fail("has an invalid percent-encoding in the password; write \"%\" as %25")
                }
                password = secret.isEmpty ? nil : secret
            }
        }

        if rest.contains("#") {
            throw fail("has a fragment (\"#…\"), which Redis URLs do not have; write \"#\" in a password as %23")
        }
        var query: Substring?
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        let queryDatabase = try parseQuery(query, fail: fail)

        if scheme == "unix" {
            if rest.isEmpty || rest == "/" {
                throw fail("has no socket path; use e.g. unix:///var/run/redis/redis.sock")
            }
            guard rest.first == "/" else {
                throw fail("has no absolute socket path after unix://; use three slashes, e.g. unix:///var/run/redis/redis.sock")
            }
            guard let path = PercentEncoding.decode(rest) else {
                throw fail("has an invalid percent-encoding in the socket path; write \"%\" as %25")
            }
            if let problem = socketPathProblem(path) { throw fail(problem) }
            return Parsed(endpoint: .unixSocket(path: path), username: username, password: password, database: queryDatabase ?? 0)
        }

        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[slash...]
            rest = rest[..<slash]
        }
        let (host, port) = try parseHostAndPort(rest, fail: fail)

        var database = queryDatabase ?? 0
        if path.count > 1 {
            let text = path.dropFirst()
            if text.contains("/") {
                throw fail("has the path \(quoted(String(path))); the only path is the database number, e.g. /0")
            }
            let pathDatabase = try parseDatabase(text, fail: fail)
            if let queryDatabase, queryDatabase != pathDatabase {
                throw fail("names two databases, /\(pathDatabase) and ?db=\(queryDatabase); keep one")
            }
            database = pathDatabase
        }
        return Parsed(endpoint: .tcp(host: host, port: port), username: username, password: password, database: database)
    }

    private static func parseHostAndPort(
        _ hostPort: Substring,
        fail: (String) -> MessageQueueError
    ) throws(MessageQueueError) -> (String, Int) {
        let noHost = "has no host; use e.g. redis://localhost:6379/0"
        var host: Substring
        var portText: Substring?
        if hostPort.first == "[" {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw fail("has an IPv6 address without its closing \"]\"; use e.g. redis://[::1]:6379")
            }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            if host.isEmpty { throw fail(noHost) }
            guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw fail("has \(quoted("[" + host + "]")), which is not an IPv6 address; use e.g. [::1] or [2001:db8::1]")
            }
            let after = hostPort[hostPort.index(after: close)...]
            if after.first == ":" {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw fail("has text after the IPv6 address; use [address]:port, e.g. redis://[::1]:6379")
            }
        } else {
            let colons = hostPort.filter { $0 == ":" }.count
            if colons > 1 {
                throw fail("has an IPv6 address without brackets or more than one \":\"; write IPv6 hosts in brackets, e.g. redis://[::1]:6379")
            }
            if let colon = hostPort.firstIndex(of: ":") {
                host = hostPort[..<colon]
                portText = hostPort[hostPort.index(after: colon)...]
            } else {
                host = hostPort
            }
            if host.isEmpty { throw fail(noHost) }
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }) else {
                throw fail("has the host \(quoted(String(host))), which has characters not allowed in a host name; use letters, digits, \"-\", \".\" and \"_\"")
            }
        }

        guard let portText else { return (String(host), RedisConfiguration.defaultPort) }
        if portText.isEmpty {
            throw fail("has an empty port after \":\"; use 1 to 65535, or leave out the \":\" for 6379")
        }
        // The port text is never echoed: in a URL without "@" it may be a password.
        guard portText.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw fail("has a port that is not a number; use 1 to 65535 (default 6379)")
        }
        guard let port = Int(portText), (1...65_535).contains(port) else {
            throw fail("has a port out of range; use 1 to 65535 (default 6379)")
        }
        return (String(host), port)
    }

    private static func parseDatabase(_ text: Substring, fail: (String) -> MessageQueueError) throws(MessageQueueError) -> Int {
        let range = RedisConfiguration.databaseRange
        if text.isEmpty { throw fail("has an empty database number; use e.g. /0") }
        if text.first == "-", text.count > 1, text.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }) {
            throw fail("has the database number \(text), which is negative; use 0 to \(range.upperBound)")
        }
        guard text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw fail("has the database \(quoted(String(text))), which is not a whole number; use 0 to \(range.upperBound), e.g. /0")
        }
        guard let database = Int(text), range.contains(database) else {
            throw fail("has the database number \(text), which is out of range; use 0 to \(range.upperBound)")
        }
        return database
    }

    private static func parseQuery(_ query: Substring?, fail: (String) -> MessageQueueError) throws(MessageQueueError) -> Int? {
        guard let query else { return nil }
        var database: Int?
        for parameter in query.split(separator: "&", omittingEmptySubsequences: true) {
            let key = parameter.prefix { $0 != "=" }
            guard key == "db" else {
                let name = key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) && !key.isEmpty
                    ? " \(quoted(String(key)))" : ""
                throw fail(
                    "has the query parameter\(name), which is not supported; the only parameter is db "
                        + "(give the password in the URL's user part or in REDIS_PASSWORD)"
                )
            }
            guard key.endIndex < parameter.endIndex else {
                throw fail("has the query parameter \"db\" without a value; use e.g. ?db=0")
            }
            let value = try parseDatabase(parameter[parameter.index(after: key.endIndex)...], fail: fail)
            if let database, database != value {
                throw fail("names two databases, ?db=\(database) and ?db=\(value); keep one")
            }
            database = value
        }
        return database
    }

    /// Linux limits a socket path to 107 bytes, macOS to 103 (plus the terminating NUL).
    static func socketPathProblem(_ path: String) -> String? {
        #if os(Linux)
        let limit = 107
        #else
        let limit = 103
        #endif
        if path.isEmpty || path == "/" { return "has no socket path; use e.g. unix:///var/run/redis/redis.sock" }
        if path.first != "/" { return "has a relative socket path; use an absolute path such as /var/run/redis/redis.sock" }
        if path.utf8.contains(0) { return "has a NUL character in the socket path" }
        if path.utf8.count > limit {
            return "has a socket path of \(path.utf8.count) bytes; Unix socket paths are limited to \(limit) bytes"
        }
        return nil
    }

    /// `[a-zA-Z][a-zA-Z0-9+.-]*`, RFC 3986's scheme syntax.
    private static func isScheme(_ text: Substring) -> Bool {
        guard let first = text.first, first.isASCII, first.isLetter else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0)) }
    }

    // MARK: Printing

    /// Percent-encodes everything but RFC 3986's unreserved characters and sub-delimiters
    /// (and `/` when `keepingSlashes`).
    static func percentEncoded(_ text: String, keepingSlashes: Bool = false) -> String {
        let kept = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=".utf8)
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for byte in text.utf8 {
            if kept.contains(byte) || (keepingSlashes && byte == UInt8(ascii: "/")) {
                bytes.append(byte)
            } else {
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `host`, or `[host]` for an IPv6 address.
    static func bracketed(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }

    /// `"text"` with control characters escaped, shortened to 300 characters.
    static func quoted(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars.prefix(300) {
            escaped += scalar.properties.generalCategory == .control ? scalar.escaped(asASCII: true) : String(scalar)
        }
        return "\"" + escaped + (text.unicodeScalars.count > 300 ? "…" : "") + "\""
    }

    // MARK: Redaction

    static func redacted(_ url: String) -> String {
        var output = ""
        var rest = Substring(url)
        if let separator = url.firstRange(of: "://"), isScheme(url[..<separator.lowerBound]) {
            output = String(url[..<separator.upperBound])
            rest = url[separator.upperBound...]
        }

        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            let user = userinfo.prefix { $0 != ":" }
            let looksLikeUser = !user.contains { $0.isWhitespace || "/?#&=".contains($0) || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }
            if looksLikeUser {
                output += user
                if user.endIndex < userinfo.endIndex { output += ":***" }
            } else {
                output += "***"
            }
            output += "@"
            rest = rest[at...].dropFirst()
        } else {
            // No user part: a non-port after ":" may be a password written without "@host".
            let authorityEnd = rest.firstIndex { "/?#".contains($0) } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            var portStart: Substring.Index?
            if authority.first == "[" {
                if let close = authority.firstIndex(of: "]"), authority[close...].dropFirst().first == ":" {
                    portStart = authority.index(close, offsetBy: 2)
                }
            } else if let colon = authority.firstIndex(of: ":") {
                portStart = authority.index(after: colon)
            }
            if let portStart {
                let port = authority[portStart...]
                let isPort = port.isEmpty || (port.allSatisfy { $0.isASCII && $0.isNumber } && Int(port).map { (1...65_535).contains($0) } == true)
                if !isPort {
                    output += authority[..<portStart] + "***"
                    rest = rest[authorityEnd...]
                }
            }
        }
        return output + redactedQuery(rest)
    }

    /// Hides the values of query parameters whose names suggest a credential.
    private static func redactedQuery(_ text: Substring) -> String {
        guard let mark = text.firstIndex(of: "?") else { return String(text) }
        var output = String(text[...mark])
        var query = text[text.index(after: mark)...]
        var fragment: Substring = ""
        if let hash = query.firstIndex(of: "#") {
            fragment = query[hash...]
            query = query[..<hash]
        }
        let parameters = query.split(separator: "&", omittingEmptySubsequences: false).map { parameter -> String in
            let key = parameter.prefix { $0 != "=" }
            let lowered = key.lowercased()
            let isSecret = ["pass", "pwd", "secret", "token", "auth", "key"].contains { lowered.contains($0) }
            return isSecret && key.endIndex < parameter.endIndex ? key + "=***" : String(parameter)
        }
        output += parameters.joined(separator: "&")
        return output + fragment
    }
}

import AbstractBackend
import CHiredis
import CHiredisReplyArena
import Foundation
import Logging
import Synchronization

/// Receives, on the connection thread, the replies of one request in order.
///
/// `receive` is called once per command of the request; the reply is freed when it returns, so
/// a handler copies what it keeps. `finish` is called exactly once: with `nil` after the last
/// reply, or with the error that ended the request early (connection lost, backend closed).
protocol ReplyHandler: AnyObject, Sendable {
    func receive(_ reply: UnsafePointer<redisReply>)
    func finish(_ error: MessageQueueError?)
}

/// One hiredis context, owned by one dedicated thread.
///
/// Callers on any task enqueue requests; the thread takes everything queued, writes it in one
/// batch and reads the replies in order, so concurrent callers are pipelined without asking for
/// it. Swift's cooperative pool never blocks on the socket.
///
/// A lost connection fails the requests in flight with a typed error and is re-opened for the
/// next request, with a backoff between failed attempts (during which requests fail at once
/// instead of waiting). The socket read timeout is set on every new context, so no request waits
/// longer than ``RedisConfiguration/socketTimeout`` for a reply.
final class RedisConnection: @unchecked Sendable {
    /// A queued request: encoded now, or encoded by the thread when it takes the request (so
    /// acknowledgements that arrive meanwhile join the same command).
    private struct Request {
        enum Body {
            case encoded(RESPCommand)
            case deferred(@Sendable () -> RESPCommand)
        }
        var body: Body
        var completion: Completion

        /// Fails the request without sending it. A deferred command is still built, and dropped:
        /// its owner may wait for the build before it queues the next one (an acknowledger
        /// queues its next flush only once the previous one took the buffered ids).
        func fail(_ error: MessageQueueError) {
            if case .deferred(let build) = body { _ = build() }
            completion.fail(error)
        }
    }

    /// Who learns the outcome of a request.
    enum Completion {
        /// Nobody waits; the thread drops the replies.
        case none
        /// A handler that reads each reply.
        case handler(any ReplyHandler)
        /// A caller that only needs success or the first error (publishes): no handler object.
        case outcome(UnsafeContinuation<Outcome, Never>)

        fileprivate func fail(_ error: MessageQueueError) {
            switch self {
            case .none: break
            case .handler(let handler): handler.finish(error)
            case .outcome(let continuation): continuation.resume(returning: .failed(error))
            }
        }
    }

    /// The result of a request completed with ``Completion/outcome(_:)``.
    enum Outcome: Sendable {
        case ok
        /// The text of the first error reply.
        case errorReply(String)
        case failed(MessageQueueError)
    }

    private struct Queue {
        var requests: [Request] = []
        var closed = false
    }

    /// What the connection is for, shown in logs and in `CLIENT SETNAME`.
    let role: String
    private let configuration: RedisConfiguration
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let wakeup = NSCondition()
    private let threadDone = NSCondition()
    private let threadFinished = Atomic<Bool>(false)
    /// The socket of the live context, or -1: `close()` shuts it down to end a blocked read.
    private let socket = Atomic<Int32>(-1)
    /// The server's `CLIENT ID` of the live context, or 0, for `CLIENT UNBLOCK`.
    private let clientID = Atomic<Int64>(0)
    /// Whether requests are queued, readable without the queue lock.
    private let hasWork = Atomic<Bool>(false)
    /// Whether the thread waits on `wakeup`: only then does `enqueue` signal it.
    private let sleeping = Atomic<Bool>(false)
    /// When the last connection attempt failed: the end of its backoff (`retryAt`), in
    /// nanoseconds after `created`; 0 after a success. Callers read it without the thread.
    private let backoffEnd = Atomic<Int64>(0)
    private let created = ContinuousClock.now

    // Owned by the connection thread.
    private var context: UnsafeMutablePointer<redisContext>?
    /// Where the live context's replies are allocated; reset after each reply is handled.
    private var arena: OpaquePointer?
    private var backoff = RedisConnection.initialBackoff
    private var retryAt = ContinuousClock.now
    private var lastFailure: MessageQueueError?

    static let initialBackoff = Duration.milliseconds(50)
    static let maximumBackoff = Duration.seconds(2)
    /// The longest a TCP connect may take.
    static let connectTimeout = Duration.seconds(2)
    /// How long an idle thread watches for work before it sleeps.
    static let spinTime = Duration.microseconds(50)
    /// Requests taken in one batch at most, so one write stays bounded.
    static let maximumBatch = 4096

    /// Whether the thread spins briefly for the next request and for lone replies. Worth it for
    /// the command connection, where callers await each reply; a consumer's connection gets its
    /// requests a batch apart, and spinning there would only take the core from the server.
    private let spins: Bool

    init(configuration: RedisConfiguration, role: String, spins: Bool, logger: Logger) {
        self.configuration = configuration
        self.role = role
        self.spins = spins
        self.logger = logger
        let thread = Thread { [self] in
            // Named from inside: Linux names only the calling thread (15 characters at most).
            _ = abe_name_current_thread(String("abe-\(role)".prefix(15)))
            _ = abe_block_sigpipe_on_current_thread()
            run()
        }
        thread.start()
    }

    // MARK: Callers

    /// Queues `command`; `handler` gets its replies on the connection thread. Fails the handler at
    /// once when the connection is closed or in its reconnect backoff.
    func enqueue(_ command: RESPCommand, handler: (any ReplyHandler)?) {
        enqueue(Request(body: .encoded(command), completion: handler.map { .handler($0) } ?? .none))
    }

    /// Sends `command` and returns whether every reply succeeded, or the first error reply.
    func outcome(_ command: RESPCommand) async -> Outcome {
        await withUnsafeContinuation { continuation in
            enqueue(Request(body: .encoded(command), completion: .outcome(continuation)))
        }
    }

    /// Queues a request whose command is built by the thread when it takes it.
    func enqueueDeferred(_ build: @escaping @Sendable () -> RESPCommand, handler: (any ReplyHandler)?) {
        enqueue(Request(body: .deferred(build), completion: handler.map { .handler($0) } ?? .none))
    }

    private func enqueue(_ request: Request) {
        let accepted = queue.withLock { queue -> Bool in
            guard !queue.closed else { return false }
            queue.requests.append(request)
            hasWork.store(true, ordering: .sequentiallyConsistent)
            return true
        }
        guard accepted else {
            request.fail(.closed(RedisBackend.providerName))
            return
        }
        if sleeping.load(ordering: .sequentiallyConsistent) { wake() }
    }

    private func wake() {
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
    }

    /// Sends `command` and returns its replies, copied.
    func values(_ command: RESPCommand) async throws(MessageQueueError) -> [RedisValue] {
        let result = await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<[RedisValue], MessageQueueError>, Never>) in
            enqueue(command, handler: ValueCollector(expecting: command.count, continuation))
        }
        return try result.get()
    }

    /// Sends one command and returns its reply, throwing when it is an error reply.
    func value(_ arguments: String...) async throws(MessageQueueError) -> RedisValue {
        var command = RESPCommand()
        command.append(arguments)
        let reply = try await values(command)[0]
        if let message = reply.errorMessage { throw RedisErrors.reply(message, command: arguments[0], configuration: configuration) }
        return reply
    }

    /// True while the last connection attempt failed and its backoff has not passed: requests
    /// fail at once. Turns false when the backoff ends, so that the next request tries again; a
    /// caller that stopped sending while this was true would otherwise never learn the server
    /// is back.
    var isUnreachable: Bool {
        let end = backoffEnd.load(ordering: .relaxed)
        return end != 0 && (ContinuousClock.now - created).wholeNanoseconds < end
    }

    /// The server's id for this connection (`CLIENT ID`), or `nil` when not connected.
    var serverClientID: Int64? {
        let id = clientID.load(ordering: .acquiring)
        return id == 0 ? nil : id
    }

    /// Stops the thread: queued and in-flight requests fail with a `closed` error, a blocked read
    /// is interrupted, and the context is freed. Returns when the thread has finished.
    func close() async {
        let wasOpen = queue.withLock { queue -> Bool in
            defer { queue.closed = true }
            return !queue.closed
        }
        if wasOpen {
            let fd = socket.load(ordering: .acquiring)
            if fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
            wake()
        }
        while !threadFinished.load(ordering: .acquiring) {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    // MARK: The connection thread

    private func run() {
        while let batch = takeBatch() {
            process(batch)
        }
        disconnect()
        threadFinished.store(true, ordering: .releasing)
    }

    /// Waits for requests; returns them all (up to `maximumBatch`), or `nil` once closed. After
    /// closing, what is still queued is failed, not sent.
    private func takeBatch() -> [Request]? {
        while true {
            let (batch, closed) = queue.withLock { queue -> ([Request], Bool) in
                if queue.closed {
                    let rest = queue.requests
                    queue.requests = []
                    return (rest, true)
                }
                if queue.requests.count <= Self.maximumBatch {
                    let all = queue.requests
                    queue.requests = []
                    hasWork.store(false, ordering: .sequentiallyConsistent)
                    return (all, false)
                }
                let head = Array(queue.requests.prefix(Self.maximumBatch))
                queue.requests.removeFirst(Self.maximumBatch)
                return (head, false)
            }
            if closed {
                for request in batch { request.fail(.closed(RedisBackend.providerName)) }
                return nil
            }
            if !batch.isEmpty { return batch }
            // Callers usually send again right after a reply.
            if spins, spin(for: Self.spinTime, until: { hasWork.load(ordering: .acquiring) }) { continue }
            wakeup.lock()
            sleeping.store(true, ordering: .sequentiallyConsistent)
            let idle = queue.withLock { $0.requests.isEmpty && !$0.closed }
            if idle { wakeup.wait() }
            sleeping.store(false, ordering: .sequentiallyConsistent)
            wakeup.unlock()
        }
    }

    /// Sends `batch` and reads its replies. Requests queued meanwhile go out whenever the
    /// buffered replies are used up, just before the thread would block on the socket: the
    /// server has the next commands at hand without waiting for this thread, and they leave in
    /// as few writes as possible (one small write per reply would cost the server a read each).
    private func process(_ batch: [Request]) {
        guard let context = connectIfNeeded() else {
            let error = lastFailure ?? RedisErrors.unreachable(configuration, reason: "not connected")
            for request in batch { request.fail(error) }
            return
        }
        var inFlight: [(completion: Completion, replies: Int)] = []
        inFlight.reserveCapacity(batch.count)
        guard send(batch, on: context, into: &inFlight) else { return }
        var head = 0
        while head < inFlight.count {
            let step = inFlight[head]
            var firstError: String?
            for index in 0..<step.replies {
                // Only the very last reply expected is latency-bound: a caller awaits it alone.
                let last = index == step.replies - 1 && head == inFlight.count - 1
                guard let raw = nextReply(context, inFlight: &inFlight, head: head, last: last) else { return }
                let reply = raw.assumingMemoryBound(to: redisReply.self)
                switch step.completion {
                case .none: break
                case .handler(let handler): handler.receive(reply)
                case .outcome:
                    if firstError == nil, reply.pointee.type == REDIS_REPLY_ERROR {
                        firstError = String(decoding: RedisValue.bytes(of: reply.pointee), as: UTF8.self)
                    }
                }
                abe_reply_arena_reset(arena)
            }
            switch step.completion {
            case .none: break
            case .handler(let handler): handler.finish(nil)
            case .outcome(let continuation): continuation.resume(returning: firstError.map { .errorReply($0) } ?? .ok)
            }
            head += 1
        }
    }

    /// The next reply, from what is already read when possible. Before reading the socket it
    /// sends what was queued meanwhile, and, when `last` is the only reply still awaited, spins
    /// briefly for it. On failure everything from `head` on is failed and `nil` returned.
    private func nextReply(
        _ context: UnsafeMutablePointer<redisContext>,
        inFlight: inout [(completion: Completion, replies: Int)],
        head: Int,
        last: Bool
    ) -> UnsafeMutableRawPointer? {
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(context.pointee.reader, &raw) == REDIS_OK else {
                fail(inFlight[head...], with: connectionLost(context))
                return nil
            }
            if let raw { return raw }
            var lone = last
            if hasWork.load(ordering: .acquiring) {
                let more = takeQueued()
                if !more.isEmpty {
                    lone = false
                    guard send(more, on: context, into: &inFlight) else { return nil }
                }
            }
            if spins && lone { awaitReadable(context) }
            guard redisBufferRead(context) == REDIS_OK else {
                fail(inFlight[head...], with: connectionLost(context))
                return nil
            }
        }
    }

    /// Watches the socket for up to ``spinTime`` before a blocking read: a loopback reply
    /// usually arrives within tens of microseconds, and catching it awake saves the thread a
    /// sleep and a wake-up per round trip.
    private func awaitReadable(_ context: UnsafeMutablePointer<redisContext>) {
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        _ = spin(for: Self.spinTime, until: { poll(&descriptor, 1, 0) != 0 })
    }

    /// Encodes `requests` into hiredis's output buffer and writes it out. On failure the
    /// connection is dropped and everything in flight fails.
    private func send(_ requests: [Request], on context: UnsafeMutablePointer<redisContext>, into inFlight: inout [(completion: Completion, replies: Int)]) -> Bool {
        for (index, request) in requests.enumerated() {
            let command: RESPCommand
            switch request.body {
            case .encoded(let encoded): command = encoded
            case .deferred(let build): command = build()
            }
            inFlight.append((request.completion, command.count))
            guard !command.isEmpty else { continue }
            let appended = command.bytes.withUnsafeBytes { raw in
                redisAppendFormattedCommand(context, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
            }
            guard appended == REDIS_OK else {
                let error = connectionLost(context)
                fail(inFlight[...], with: error)
                for unsent in requests[(index + 1)...] { unsent.fail(error) }
                return false
            }
        }
        var done: Int32 = 0
        repeat {
            guard redisBufferWrite(context, &done) == REDIS_OK else {
                fail(inFlight[...], with: connectionLost(context))
                return false
            }
        } while done == 0
        return true
    }

    /// Takes what is queued now without waiting (nothing once closed: `takeBatch` fails it).
    private func takeQueued() -> [Request] {
        queue.withLock { queue -> [Request] in
            guard !queue.closed else { return [] }
            let taken = Array(queue.requests.prefix(Self.maximumBatch))
            queue.requests.removeFirst(taken.count)
            if queue.requests.isEmpty { hasWork.store(false, ordering: .sequentiallyConsistent) }
            return taken
        }
    }

    private func fail(_ steps: ArraySlice<(completion: Completion, replies: Int)>, with error: MessageQueueError) {
        disconnect()
        for step in steps { step.completion.fail(error) }
    }

    /// The error for a context that failed mid-request; the context is unusable afterwards.
    private func connectionLost(_ context: UnsafeMutablePointer<redisContext>) -> MessageQueueError {
        if queue.withLock({ $0.closed }) { return .closed(RedisBackend.providerName) }
        let reason = Self.errorText(context)
        let error: MessageQueueError
        // hiredis reports a socket read timeout as an I/O error with EAGAIN's text.
        if context.pointee.err == REDIS_ERR_IO && reason == String(cString: strerror(EAGAIN)) {
            error = RedisErrors.timedOut(configuration)
        } else {
            error = RedisErrors.connectionLost(configuration, reason: reason)
        }
        logger.warning("redis connection lost", metadata: ["connection": "\(role)", "server": "\(configuration.endpoint)", "reason": "\(reason)"])
        return error
    }

    private func connectIfNeeded() -> UnsafeMutablePointer<redisContext>? {
        if let context { return context }
        if ContinuousClock.now < retryAt { return nil }
        do {
            let context = try connect()
            self.context = context
            socket.store(context.pointee.fd, ordering: .releasing)
            backoffEnd.store(0, ordering: .relaxed)
            if lastFailure != nil {
                logger.info("redis connection re-established", metadata: ["connection": "\(role)", "server": "\(configuration.endpoint)"])
            }
            backoff = Self.initialBackoff
            lastFailure = nil
            return context
        } catch {
            lastFailure = error
            retryAt = ContinuousClock.now + backoff
            backoff = min(backoff * 2, Self.maximumBackoff)
            backoffEnd.store(max(1, (retryAt - created).wholeNanoseconds), ordering: .relaxed)
            logger.warning("redis connection failed", metadata: ["connection": "\(role)", "server": "\(configuration.endpoint)", "error": "\(error.message)"])
            return nil
        }
    }

    /// Opens a context, sets its timeouts and runs the handshake (`AUTH`, `SELECT`, `CLIENT SETNAME`, `CLIENT ID`).
    private func connect() throws(MessageQueueError) -> UnsafeMutablePointer<redisContext> {
        let connectTimeout = Self.timeval(Self.connectTimeout)
        let made: UnsafeMutablePointer<redisContext>?
        switch configuration.endpoint {
        case let .tcp(host, port): made = redisConnectWithTimeout(host, Int32(port), connectTimeout)
        case let .unixSocket(path): made = redisConnectUnixWithTimeout(path, connectTimeout)
        }
        guard let context = made else {
            throw RedisErrors.unreachable(configuration, reason: "out of memory")
        }
        if context.pointee.err != 0 {
            let reason = Self.errorText(context)
            redisFree(context)
            throw RedisErrors.unreachable(configuration, reason: reason)
        }
        // Always set, and set again on every new context: a read never waits forever.
        guard redisSetTimeout(context, Self.timeval(configuration.socketTimeout)) == REDIS_OK else {
            let reason = Self.errorText(context)
            redisFree(context)
            throw RedisErrors.unreachable(configuration, reason: reason)
        }
        _ = redisEnableKeepAlive(context)
        // Keep the reader's buffer between replies: by default hiredis frees it whenever more
        // than 16 KiB are unused, and a stream read of 256 entries regrows it every time.
        context.pointee.reader.pointee.maxbuf = 0
        do {
            try handshake(context)
        } catch {
            redisFree(context)
            throw error
        }
        // After the handshake, which frees its replies the usual way.
        guard let arena = abe_reply_arena_create() else {
            redisFree(context)
            throw RedisErrors.unreachable(configuration, reason: "out of memory")
        }
        abe_reply_arena_attach(arena, context.pointee.reader)
        self.arena = arena
        return context
    }

    private func handshake(_ context: UnsafeMutablePointer<redisContext>) throws(MessageQueueError) {
        var steps: [[String]] = []
        if let password = configuration.password {
            steps.append(configuration.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if configuration.database != 0 { steps.append(["SELECT", String(configuration.database)]) }
        steps.append(["CLIENT", "SETNAME", "abe-\(role)-\(ProcessInfo.processInfo.processIdentifier)"])
        steps.append(["CLIENT", "ID"])
        var command = RESPCommand()
        for step in steps { command.append(step) }
        let appended = command.bytes.withUnsafeBytes { raw in
            redisAppendFormattedCommand(context, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
        }
        guard appended == REDIS_OK else { throw RedisErrors.unreachable(configuration, reason: Self.errorText(context)) }
        var failure: MessageQueueError?
        for step in steps {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw RedisErrors.unreachable(configuration, reason: Self.errorText(context))
            }
            let value = RedisValue(raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            // The command name only: an AUTH step's arguments hold the password.
            if let message = value.errorMessage, failure == nil, step[0] != "CLIENT" {
                failure = RedisErrors.reply(message, command: step[0], configuration: configuration)
            }
            if step == ["CLIENT", "ID"], let id = value.integer { clientID.store(id, ordering: .releasing) }
        }
        if let failure { throw failure }
    }

    private func disconnect() {
        socket.store(-1, ordering: .releasing)
        clientID.store(0, ordering: .releasing)
        if let context { redisFree(context) }
        context = nil
        abe_reply_arena_destroy(arena)
        arena = nil
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        var text = withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        // A protocol error found while parsing buffered replies is the reader's, not the context's.
        if text.isEmpty, let reader = context.pointee.reader, reader.pointee.err != 0 {
            text = withUnsafeBytes(of: reader.pointee.errstr) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        return text.isEmpty ? "connection closed" : text
    }

    private static func timeval(_ duration: Duration) -> Foundation.timeval {
        let microseconds = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        return Foundation.timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
    }
}

/// Copies every reply of a request and resumes a continuation with them.
private final class ValueCollector: ReplyHandler, @unchecked Sendable {
    private var values: [RedisValue] = []
    private let continuation: UnsafeContinuation<Result<[RedisValue], MessageQueueError>, Never>

    init(expecting count: Int, _ continuation: UnsafeContinuation<Result<[RedisValue], MessageQueueError>, Never>) {
        values.reserveCapacity(count)
        self.continuation = continuation
    }

    func receive(_ reply: UnsafePointer<redisReply>) {
        values.append(RedisValue(reply))
    }

    func finish(_ error: MessageQueueError?) {
        if let error {
            continuation.resume(returning: .failure(error))
        } else {
            continuation.resume(returning: .success(values))
        }
    }
}

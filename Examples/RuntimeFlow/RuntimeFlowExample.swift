// The runtime flow of docs/runtime-flow.md as a program the build compiles:
// environment → loader → provider → MessageConsumer (a Service) → handler → ack, then a graceful
// shutdown. Run it with `swift run abe-example-runtime-flow`; set ABE_SPOOL_DIR or REDIS_URL to
// run it on the file spool or Redis instead of the in-memory development fallback.

import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendInMemory
import AbstractBackendRedis
import Logging
import ServiceLifecycle
import Synchronization

/// What the producer publishes and the handler decodes.
struct Order: Codable, Sendable {
    var id: Int
    var amount: Double
}

@main
enum RuntimeFlowExample {
    static func main() async throws {
        let logger = Logger(label: "orders")

        // 1. Environment → loader → provider: QUEUE_BACKEND, REDIS_URL or ABE_SPOOL_DIR decide.
        let backend = try loadBackend(
            providers: [RedisBackend.provider, FileSpoolBackend.provider, InMemoryBackend.provider],
            logger: logger
        )
        let key = try MessageQueueKey("example-orders")
        let orders = 10

        // 2. A producer publishes application types as JSON payloads.
        for id in 1...orders {
            try await backend.publish(try MessageQueuePayload(encoding: Order(id: id, amount: Double(id) * 9.5)), to: key)
        }

        // 3. A consumer runs a handler over its group: return → ack, throw → retried later.
        let processed = Atomic(0)
        let consumer = try MessageConsumer(
            backend: backend,
            group: ConsumerGroup("billing"),
            keys: [key],
            concurrency: 4,
            retryPolicy: RetryPolicy(initialDelay: .milliseconds(200)),
            logger: logger
        ) { message in
            let order = try message.payload.decode(as: Order.self)
            logger.info("charged order", metadata: ["order": "\(order.id)", "amount": "\(order.amount)"])
            processed.add(1, ordering: .relaxed)
        }

        // 4. The consumer is a Service: a ServiceGroup runs it and, on SIGTERM or SIGINT, shuts
        //    it down gracefully, letting running handlers finish.
        let services = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [consumer],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        let running = Task { try await services.run() }

        // A real service runs until it is signalled; this example stops once every order is in.
        while processed.load(ordering: .relaxed) < orders {
            try await Task.sleep(for: .milliseconds(20))
        }
        await services.triggerGracefulShutdown()
        try await running.value
        await backend.close()
        print("runtime-flow example: \(orders) orders processed on \(type(of: backend).providerName)")
    }
}

/// A first-in-first-out buffer: an array and the index of its first live element.
///
/// It replaces `Deque` on the in-memory hot paths because, being in this module, every operation is
/// specialised for the element type; `Deque`'s generic internals showed up in profiles as
/// value-witness calls. Removed elements are overwritten with `vacancy`, so references they held
/// are released at once; the dead prefix is compacted away once it is as long as the live part.
struct Queue<Element> {
    private var storage: [Element] = []
    private var head = 0
    private let vacancy: Element

    init(vacancy: Element) {
        self.vacancy = vacancy
    }

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }
    var first: Element? { isEmpty ? nil : storage[head] }

    /// The element `offset` places from the front.
    subscript(offset: Int) -> Element {
        get { storage[head + offset] }
        _modify { yield &storage[head + offset] }
    }

    mutating func append(_ element: Element) {
        storage.append(element)
    }

    mutating func prepend(_ element: Element) {
        if head > 0 {
            head -= 1
            storage[head] = element
        } else {
            storage.insert(element, at: 0)
        }
    }

    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        defer { removeFirst(1) }
        return storage[head]
    }

    mutating func removeFirst(_ n: Int) {
        precondition(n <= count, "removing more elements than the queue holds")
        for index in head..<head + n { storage[index] = vacancy }
        head += n
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head >= storage.count - head {
            storage.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }
}

extension Queue: Sendable where Element: Sendable {}

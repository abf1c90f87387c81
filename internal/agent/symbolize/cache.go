package symbolize

import "container/list"

// binaryCache holds loaded binaries by key, least recently used first out,
// within a bound on their estimated bytes. The binary used last always
// stays, even alone over the bound, so that one huge binary is not loaded
// again for every stack.
type binaryCache struct {
	maxBytes  int64
	usedBytes int64
	lru       *list.List // of *objfile, most recent at the front
	byKey     map[string]*list.Element

	loads, evictions int64
}

func newBinaryCache(maxBytes int64) *binaryCache {
	return &binaryCache{maxBytes: maxBytes, lru: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the binary with key and marks it used, or nil.
func (c *binaryCache) get(key string) *objfile {
	e, ok := c.byKey[key]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*objfile)
}

// add inserts a freshly loaded binary as the most recently used.
func (c *binaryCache) add(b *objfile) {
	if e, ok := c.byKey[b.key]; ok {
		c.remove(e)
	}
	c.loads++
	c.byKey[b.key] = c.lru.PushFront(b)
	b.accounted = b.sizeBytes()
	c.usedBytes += b.accounted
	c.evict()
}

// resize recounts b, whose interned names may have grown since it was added.
func (c *binaryCache) resize(b *objfile) {
	if _, ok := c.byKey[b.key]; !ok {
		return
	}
	n := b.sizeBytes()
	if n == b.accounted {
		return
	}
	c.usedBytes += n - b.accounted
	b.accounted = n
	c.evict()
}

func (c *binaryCache) evict() {
	for c.usedBytes > c.maxBytes && c.lru.Len() > 1 {
		c.remove(c.lru.Back())
		c.evictions++
	}
}

// drop removes b, when cached, because its file can no longer be read.
func (c *binaryCache) drop(b *objfile) {
	if e, ok := c.byKey[b.key]; ok && e.Value.(*objfile) == b {
		c.remove(e)
	}
}

// remove takes a binary out of the cache and releases its file mapping:
// nothing looks up in it after.
func (c *binaryCache) remove(e *list.Element) {
	b := c.lru.Remove(e).(*objfile)
	delete(c.byKey, b.key)
	c.usedBytes -= b.accounted
	b.close()
}

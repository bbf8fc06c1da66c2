/* A fixed-size ring buffer of bytes. */
#include <stdlib.h>
#include <string.h>

struct ring {
    unsigned char *data;
    size_t capacity;
    size_t head;
    size_t length;
};

struct ring *ring_new(size_t capacity)
{
    struct ring *r = malloc(sizeof *r);
    if (r == NULL)
        return NULL;
    r->data = malloc(capacity);
    if (r->data == NULL) {
        free(r);
        return NULL;
    }
    r->capacity = capacity;
    r->head = 0;
    r->length = 0;
    return r;
}

size_t ring_write(struct ring *r, const unsigned char *bytes, size_t count)
{
    size_t written = 0;
    while (written < count && r->length < r->capacity) {
        size_t tail = (r->head + r->length) % r->capacity;
        r->data[tail] = bytes[written++];
        r->length++;
    }
    return written;
}

size_t ring_read(struct ring *r, unsigned char *out, size_t count)
{
    size_t done = 0;
    for (; done < count && r->length > 0; done++) {
        out[done] = r->data[r->head];
        r->head = (r->head + 1) % r->capacity;
        r->length--;
    }
    return done;
}

void ring_free(struct ring *r)
{
    if (r != NULL) {
        free(r->data);
        free(r);
    }
}

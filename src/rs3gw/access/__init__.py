"""Access control: bucket policies, ACLs and Block Public Access, evaluated without I/O.

The protocol layer reads the documents (bucket config, object system metadata) and asks
``decide`` whether a request may proceed; nothing here knows about HTTP or storage.
"""

//! berth's services: containers, images, events, system.

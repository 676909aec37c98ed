-- Each service has a database of its own.
CREATE DATABASE catalog;
CREATE DATABASE inventory;
CREATE DATABASE reservation;

print("abe")
